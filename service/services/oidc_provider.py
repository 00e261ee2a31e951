"""One OpenID Connect provider, as the service's client of it: Authlib's OAuth 2.0 client
(requests integration) builds the authorization URL (code flow, PKCE S256, state and nonce)
and exchanges the code; joserfc checks the ID token against the provider's JWKS.

Its metadata comes from discovery (`<issuer>/.well-known/openid-configuration`), kept per
worker process for an hour; its keys likewise, fetched again as soon as an ID token names a
`kid` they lack (the provider rotated its keys). Every HTTP call gives up after the
configured timeout and runs under the provider's circuit breaker, so a provider that is
down or hung costs a request thread that long at most, and then nothing until the breaker
lets a trial through. Whatever goes wrong with the provider is a ProviderError, which the
sign-in answers as `provider_error`: never a 500.
"""

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from service.config import OidcProviderSettings
from service.logging import get_logger

log = get_logger("service")
METADATA_MAX_AGE_SECONDS = 3600
# Signatures an ID token may carry: the provider's keys, never a shared secret or `none`.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Clock skew tolerated between the provider and us when checking `exp` and `iat`.
LEEWAY_SECONDS = 60


class ProviderError(Exception):
    """The provider did not answer in time, refused, or answered something that does not
    check out. The message says what, for the log; it never holds a token or a code."""


@dataclass(frozen=True, slots=True)
class Metadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    token_auth_method: str


class OidcProvider:
    def __init__(
        self,
        settings: OidcProviderSettings,
        *,
        redirect_uri: str,
        timeout_seconds: float,
        guard: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.name = settings.name
        self.issuer = settings.issuer
        self.redirect_uri = redirect_uri
        self._settings = settings
        self._timeout = timeout_seconds
        # The provider's circuit breaker, around every call to it.
        self._guard = guard
        self._lock = threading.Lock()
        self._metadata: Metadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser: the provider's authorization endpoint with the code
        flow, `state`, `nonce` and the S256 challenge of `code_verifier`."""
        url, _ = self._client().create_authorization_url(
            self.metadata().authorization_endpoint,
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
        )
        return str(url)

    def exchange(self, *, code: str, code_verifier: str) -> dict[str, Any]:
        """The claims of the ID token the code is exchanged for, checked: signature by the
        provider's keys, `iss`, `aud` (and `azp`), `exp`, `iat`, `sub`. The nonce is the
        caller's to compare."""
        metadata = self.metadata()
        client = self._client(metadata.token_auth_method)
        try:
            with self._guard():
                token = client.fetch_token(
                    metadata.token_endpoint, code=code, code_verifier=code_verifier
                )
        except OAuthError as error:
            raise ProviderError(f"token endpoint refused the code: {error.error}") from None
        except (requests.RequestException, ValueError) as error:
            raise ProviderError(f"token endpoint: {type(error).__name__}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("token endpoint answered no id_token")
        return self._claims(id_token, metadata)

    def metadata(self) -> Metadata:
        with self._lock:
            fresh = time.monotonic() - self._metadata_at < METADATA_MAX_AGE_SECONDS
            if self._metadata is not None and fresh:
                return self._metadata
        document = self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        # OpenID Connect Discovery 4.3: the document must name the issuer it was read from.
        if document.get("issuer") != self.issuer:
            raise ProviderError("discovery: the document names another issuer")
        try:
            supported = document.get("id_token_signing_alg_values_supported") or ["RS256"]
            methods = document.get("token_endpoint_auth_methods_supported") or []
            metadata = Metadata(
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                algorithms=tuple(alg for alg in ASYMMETRIC if alg in supported),
                # Basic is the default when the provider says nothing (RFC 8414).
                token_auth_method="client_secret_post"
                if methods and "client_secret_basic" not in methods
                else "client_secret_basic",
            )
        except (KeyError, TypeError) as error:
            raise ProviderError(f"discovery: incomplete document ({error})") from None
        if not metadata.algorithms:
            raise ProviderError("discovery: no ID token signature algorithm we accept")
        with self._lock:
            self._metadata, self._metadata_at = metadata, time.monotonic()
        return metadata

    def _claims(self, id_token: str, metadata: Metadata) -> dict[str, Any]:
        try:
            kid = jws.extract_compact(id_token.encode()).headers().get("kid")
            keys = self._key_set(metadata, refresh=False)
            if kid is not None and kid not in {key.kid for key in keys.keys}:
                # A key we have not seen: the provider rotated its keys since we read them.
                keys = self._key_set(metadata, refresh=True)
                log.info("oidc_keys_refreshed", provider=self.name, kid=kid)
            decoded = jwt.decode(id_token, keys, algorithms=list(metadata.algorithms))
            claims: dict[str, Any] = dict(decoded.claims)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self._settings.client_id},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise ProviderError(f"ID token refused: {type(error).__name__}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        # OpenID Connect Core 3.1.3.7: with other audiences, or an azp, it must be us.
        if (len(audiences) > 1 or "azp" in claims) and claims.get(
            "azp"
        ) != self._settings.client_id:
            raise ProviderError("ID token refused: azp is another client")
        if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:
            raise ProviderError("ID token refused: sub is not a string of 1 to 255 characters")
        return claims

    def _key_set(self, metadata: Metadata, *, refresh: bool) -> KeySet:
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        keys = KeySet.import_key_set(self._get_json(metadata.jwks_uri))  # type: ignore[arg-type]
        with self._lock:
            self._keys = keys
        return keys

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            with self._guard():
                response = requests.get(url, timeout=self._timeout, allow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as error:
            raise ProviderError(f"{url}: {type(error).__name__}") from None
        if not isinstance(document, dict):
            raise ProviderError(f"{url}: not a JSON object")
        return document

    def _client(self, token_auth_method: str | None = None) -> OAuth2Session:
        """Authlib's client, one per flow (it keeps a flow's state; requests sessions are
        not meant to be shared across threads)."""
        return OAuth2Session(
            self._settings.client_id,
            self._settings.client_secret.get_secret_value(),
            # Basic unless the metadata says otherwise (RFC 8414's default).
            token_endpoint_auth_method=token_auth_method or "client_secret_basic",
            scope=self._settings.scopes,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            default_timeout=self._timeout,
        )
