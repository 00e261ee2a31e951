"""Sign-in with OpenID Connect providers, and linking them to an account.

The browser goes to the provider from `authorize` (or from the URL `link_url` answers), and
comes back to `callback`, which answers where to send it next: OIDC_RETURN_URL with a
single-use `login_code` (never a token in a URL), with a single-use `link_code`, or with an
`error`. `exchange` trades the login code for an ordinary session; `confirm_link` links
the identity a link code carries, for the account that began the link and no other.
Accounts are never linked by email alone: an identity already linked signs in as its
account; a new one creates an account only for an address the provider vouches for that
no account has; an account that has the address is linked only by its owner, signed in
(`link_url`, then `confirm_link`).

Why a link ends in a code rather than in the callback: a linking URL is a bearer of its
account's intent, and could be handed to somebody else, whose browser, signed in at the
provider, would link *their* identity to the account that began it (and later sign them
in there). The code only counts when the front end of the account that began the link
spends it with that account's token.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from email_validator import EmailNotValidError, validate_email

from db import repositories as repo
from db.emails import MAX_CANONICAL_LENGTH, canonical_email
from db.engine import Database
from db.models import OidcIdentity, User
from service import metrics
from service.audit import audit
from service.errors import (
    CodeChallengeRequired,
    IdentityInUse,
    InvalidLinkCode,
    InvalidLoginCode,
    LastSignInMethod,
    NotFound,
    ProviderUnavailable,
)
from service.services.accounts import AccountService, ClientInfo
from service.services.oidc_provider import OidcProvider, ProviderError
from sessions.oidc import OidcFlows, PendingAuthorization, PendingLink

# The errors a callback lands on OIDC_RETURN_URL with.
ACCESS_DENIED = "access_denied"
INVALID_STATE = "invalid_state"
EMAIL_UNVERIFIED = "email_unverified"
ACCOUNT_EXISTS = "account_exists"
IDENTITY_IN_USE = "identity_in_use"
PROVIDER_ERROR = "provider_error"
# What a callback may bring as its code: more is no code a provider issued.
MAX_CODE_LENGTH = 2048


class SignInFailed(Exception):
    """A callback that ends in `OIDC_RETURN_URL?error=<code>`; `reason` is for the log."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Callback:
    """What the provider sent the browser back with (RFC 6749 4.1.2, RFC 9207 `iss`)."""

    code: str | None = None
    state: str | None = None
    error: str | None = None
    iss: str | None = None


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query (OIDC_RETURN_URL may have one already)."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


class OidcService:
    def __init__(
        self,
        *,
        database: Database,
        accounts: AccountService,
        flows: OidcFlows,
        providers: dict[str, OidcProvider],
        public_base_url: str,
        return_url: str,
        require_verified_email: bool,
        require_code_challenge: bool = False,
    ) -> None:
        self._database = database
        self._accounts = accounts
        self._flows = flows
        self._providers = providers
        self._public_base_url = public_base_url
        self._return_url = return_url
        self._require_verified_email = require_verified_email
        self._require_code_challenge = require_code_challenge

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over https, when the service is served over it."""
        return self._public_base_url.startswith("https://")

    def providers(self) -> dict[str, Any]:
        return {
            "items": [
                {"name": name, "authorize_url": f"{self._public_base_url}/oidc/{name}/authorize"}
                for name in self._providers
            ]
        }

    def provider(self, name: str) -> OidcProvider:
        """The configured provider; NotFound (404) for any other name."""
        provider = self._providers.get(name)
        if provider is None:
            raise NotFound("No such identity provider")
        return provider

    def authorize(self, *, name: str, browser: str, client_challenge: str | None = None) -> str:
        """Where the browser that holds the binding `browser` starts signing in: the
        provider's authorization URL, or OIDC_RETURN_URL with `provider_error` when the
        provider does not answer. With `client_challenge` (the front end's S256 code
        challenge), the login code is traded only with its verifier; CodeChallengeRequired
        (400) without one while OIDC_REQUIRE_CODE_CHALLENGE is on."""
        provider = self.provider(name)
        if client_challenge is None and self._require_code_challenge:
            raise CodeChallengeRequired()
        try:
            return self._authorization_url(
                provider, browser_hash=_hash(browser), client_challenge=client_challenge
            )
        except ProviderError as error:
            return self._failed(name, SignInFailed(PROVIDER_ERROR, str(error)), linking=False)

    def link_url(self, *, name: str, user_id: int) -> dict[str, Any]:
        """The authorization URL whose callback links the identity to `user_id`;
        ProviderUnavailable (503) when the provider does not answer."""
        provider = self.provider(name)
        try:
            url = self._authorization_url(provider, link_user_id=user_id)
        except ProviderError as error:
            audit.warning(
                "oidc_login_failed", provider=name, reason=PROVIDER_ERROR, detail=str(error),
                linking=True, user_id=user_id,
            )  # fmt: skip
            metrics.OIDC_LOGINS.labels(provider=name, outcome=PROVIDER_ERROR).inc()
            raise ProviderUnavailable() from None
        return {"authorize_url": url}

    def _authorization_url(
        self,
        provider: OidcProvider,
        *,
        browser_hash: str | None = None,
        link_user_id: int | None = None,
        client_challenge: str | None = None,
    ) -> str:
        # The metadata first: a provider that does not answer leaves no state behind.
        provider.metadata()
        nonce, verifier = generate_token(32), generate_token(64)
        state = self._flows.begin(
            PendingAuthorization(
                provider=provider.name,
                nonce_hash=_hash(nonce),
                code_verifier=verifier,
                browser_hash=browser_hash,
                link_user_id=link_user_id,
                client_challenge=client_challenge,
            )
        )
        return provider.authorization_url(state=state, nonce=nonce, code_verifier=verifier)

    def callback(self, *, name: str, callback: Callback, browser: str | None) -> str:
        """Finish what `authorize` or `link_url` began; the URL to send the browser to."""
        provider = self.provider(name)
        pending = self._flows.take(callback.state or "")
        linking = pending is not None and pending.link_user_id is not None
        try:
            if pending is None or pending.provider != name:
                raise SignInFailed(INVALID_STATE, "unknown, spent or expired state")
            if pending.browser_hash is not None and (
                browser is None or not secrets.compare_digest(_hash(browser), pending.browser_hash)
            ):
                raise SignInFailed(INVALID_STATE, "finished in another browser than it began")
            if callback.error is not None:
                code = ACCESS_DENIED if callback.error == ACCESS_DENIED else PROVIDER_ERROR
                raise SignInFailed(code, f"the provider answered error={callback.error[:64]}")
            # RFC 9207: a response from another issuer (a mix-up) is not this provider's.
            if callback.iss is not None and callback.iss != provider.issuer:
                raise SignInFailed(PROVIDER_ERROR, "the callback names another issuer")
            if not callback.code or len(callback.code) > MAX_CODE_LENGTH:
                raise SignInFailed(PROVIDER_ERROR, "the callback carries no code")
            try:
                claims = provider.exchange(code=callback.code, code_verifier=pending.code_verifier)
            except ProviderError as error:
                raise SignInFailed(PROVIDER_ERROR, str(error)) from None
            nonce = claims.get("nonce")
            if not isinstance(nonce, str) or not secrets.compare_digest(
                _hash(nonce), pending.nonce_hash
            ):
                raise SignInFailed(PROVIDER_ERROR, "the ID token's nonce is not this flow's")
            if pending.link_user_id is not None:
                return self._link_code(name, claims, pending.link_user_id)
            return self._sign_in(name, claims, client_challenge=pending.client_challenge)
        except SignInFailed as failure:
            return self._failed(name, failure, linking=linking)

    def exchange(
        self, *, login_code: str, client: ClientInfo, code_verifier: str | None = None
    ) -> dict[str, Any]:
        """A new session for the account the login code names; InvalidLoginCode (400) for
        an unknown, spent or expired one, and for one whose sign-in began with a code
        challenge that `code_verifier` does not answer (the code is spent either way)."""
        code = self._flows.redeem_login_code(login_code)
        if code is None:
            raise InvalidLoginCode()
        if code.client_challenge is not None and (
            code_verifier is None
            or not secrets.compare_digest(
                create_s256_code_challenge(code_verifier), code.client_challenge
            )
        ):
            audit.warning(
                "oidc_login_failed", provider=code.provider, reason="invalid_code_verifier",
                detail="the login code's sign-in began with another code challenge",
                linking=False, user_id=code.user_id,
            )  # fmt: skip
            raise InvalidLoginCode()
        with self._database.session() as db:
            user = repo.get_user(db, user_id=code.user_id)
        if user is None:
            raise InvalidLoginCode()
        method = f"oidc:{code.provider}"
        if self._accounts.factors.enabled(user.id):
            # The account's owner turned the second factor on: a provider's word is the
            # first half, as a password is; no session until the code (/login/mfa).
            raise self._accounts.factors.challenge(user, device=None, first_method=method)
        return self._accounts.start_session(user, client=client, auth_methods=(method,))

    def confirm_link(self, *, user_id: int, link_code: str) -> dict[str, Any]:
        """Link the identity the link code carries to `user_id`'s account: the identity.
        InvalidLinkCode (400) for a code unknown, spent, expired or of another account's
        link; IdentityInUse (409) when the identity became another account's meanwhile, or
        the account has another one at that provider."""
        link = self._flows.redeem_link_code(user_id=user_id, code=link_code)
        if link is None:
            audit.warning("identity_link_refused", user_id=user_id, reason="unknown_link_code")
            raise InvalidLinkCode()
        name = link.provider
        try:
            linked = self._link(user_id, link)
        except (IdentityInUse, repo.DuplicateIdentityError):
            audit.warning("identity_link_refused", user_id=user_id, reason=IDENTITY_IN_USE)
            metrics.OIDC_LOGINS.labels(provider=name, outcome=IDENTITY_IN_USE).inc()
            raise IdentityInUse() from None
        audit.info("identity_linked", provider=name, user_id=user_id, created_account=False)
        metrics.OIDC_LOGINS.labels(provider=name, outcome="linked").inc()
        return linked

    def identities(self, *, user_id: int) -> dict[str, Any]:
        with self._database.session() as db:
            found = repo.list_identities(db, user_id=user_id)
        return {"items": [self._identity(identity) for identity in found]}

    @staticmethod
    def _identity(identity: OidcIdentity) -> dict[str, Any]:
        return {
            "provider": identity.provider,
            "subject": identity.subject,
            "email": identity.email,
            "linked_at": identity.linked_at,
        }

    def unlink(self, *, user_id: int, name: str) -> dict[str, Any]:
        """Unlink the account's identity at `name`; NotFound (404) when none is linked,
        LastSignInMethod (409) when the account would have no way left to sign in."""
        with self._database.transaction() as db:
            # Locked, so that two unlinks at once cannot both find the other one left.
            user = repo.lock_user(db, user_id=user_id)
            if user is None:
                raise NotFound("Account not found")
            linked = [identity.provider for identity in repo.list_identities(db, user_id=user_id)]
            if name not in linked:
                raise NotFound("No identity at this provider is linked to the account")
            if user.password_hash is None and len(linked) == 1:
                raise LastSignInMethod()
            repo.delete_identity(db, user_id=user_id, provider=name)
        audit.info("identity_unlinked", provider=name, user_id=user_id)
        return {"provider": name, "unlinked": True}

    def _sign_in(self, name: str, claims: dict[str, Any], *, client_challenge: str | None) -> str:
        subject = claims["sub"]
        with self._database.session() as db:
            identity = repo.get_identity(db, provider=name, subject=subject)
            user = repo.get_user(db, user_id=identity.user_id) if identity else None
        created = False
        if user is None:
            user = self._new_account(name, claims)
            created = True
        elif self._require_verified_email and user.email_verified_at is None:
            raise SignInFailed(EMAIL_UNVERIFIED, "the account's own address is not verified")
        code = self._flows.issue_login_code(
            user_id=user.id, provider=name, client_challenge=client_challenge
        )
        audit.info("oidc_login", provider=name, user_id=user.id, created=created)
        metrics.OIDC_LOGINS.labels(
            provider=name, outcome="created" if created else "signed_in"
        ).inc()
        return with_query(self._return_url, login_code=code)

    def _new_account(self, name: str, claims: dict[str, Any]) -> User:
        """An account for an identity no account has: only for an address the provider
        vouches for, and that no account has (its owner signs in and links instead)."""
        if claims.get("email_verified") not in (True, "true"):
            raise SignInFailed(EMAIL_UNVERIFIED, "the provider does not vouch for the address")
        email = _usable_email(claims.get("email"))
        if email is None:
            raise SignInFailed(EMAIL_UNVERIFIED, "the provider named no usable address")
        with self._database.session() as db:
            if repo.get_user_by_email(db, email=email) is not None:
                raise SignInFailed(ACCOUNT_EXISTS, "an account has the address")
        try:
            # The account and its identity together, or neither.
            with self._database.transaction() as db:
                user = repo.create_user(
                    db, email=email, password_hash=None, email_verified_at=datetime.now(UTC)
                )
                repo.create_identity(
                    db, user_id=user.id, provider=name, subject=claims["sub"], email=email
                )
        except repo.DuplicateEmailError:
            raise SignInFailed(ACCOUNT_EXISTS, "an account took the address meanwhile") from None
        except repo.DuplicateIdentityError:
            raise SignInFailed(IDENTITY_IN_USE, "the identity was linked meanwhile") from None
        audit.info("user_registered", user_id=user.id, via=f"oidc:{name}")
        audit.info("identity_linked", provider=name, user_id=user.id, created_account=True)
        return user

    def _link(self, user_id: int, link: PendingLink) -> dict[str, Any]:
        """The identity, linked to `user_id` (already, or now); IdentityInUse or
        DuplicateIdentityError when it is another account's, or the account has another
        one at that provider."""
        with self._database.transaction() as db:
            # Locked: the account is not deleted while its identity is linked.
            if repo.lock_user(db, user_id=user_id) is None:
                raise InvalidLinkCode()
            identity = repo.get_identity(db, provider=link.provider, subject=link.subject)
            if identity is not None and identity.user_id != user_id:
                raise IdentityInUse()
            if identity is None:
                identity = repo.create_identity(
                    db,
                    user_id=user_id,
                    provider=link.provider,
                    subject=link.subject,
                    email=link.email,
                )
            return self._identity(identity)

    def _link_code(self, name: str, claims: dict[str, Any], user_id: int) -> str:
        """A link code for the identity the provider vouched for; nothing linked yet
        (`confirm_link` does, for `user_id` only). An identity that is plainly in use is
        refused here already, so the browser learns it at once."""
        subject = claims["sub"]
        with self._database.session() as db:
            identity = repo.get_identity(db, provider=name, subject=subject)
            others = [
                linked
                for linked in repo.list_identities(db, user_id=user_id)
                if linked.provider == name and linked.subject != subject
            ]
        if identity is not None and identity.user_id != user_id:
            raise SignInFailed(IDENTITY_IN_USE, "the identity is another account's")
        if others:
            raise SignInFailed(IDENTITY_IN_USE, "the account has another identity there")
        link = PendingLink(provider=name, subject=subject, email=_usable_email(claims.get("email")))
        code = self._flows.issue_link_code(user_id=user_id, link=link)
        audit.info("identity_link_vouched", provider=name, user_id=user_id)
        return with_query(self._return_url, link_code=code)

    def _failed(self, name: str, failure: SignInFailed, *, linking: bool) -> str:
        audit.warning(
            "oidc_login_failed", provider=name, reason=failure.code, detail=failure.reason,
            linking=linking,
        )  # fmt: skip
        metrics.OIDC_LOGINS.labels(provider=name, outcome=failure.code).inc()
        return with_query(self._return_url, error=failure.code)


def _usable_email(value: Any) -> str | None:
    """The provider's address as registration would store it, or None when registration
    would refuse it (not an address, a special-use domain, too long)."""
    if not isinstance(value, str) or len(value) > 254:
        return None
    try:
        email = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    if len(canonical_email(email)) > MAX_CANONICAL_LENGTH:
        return None
    return email
