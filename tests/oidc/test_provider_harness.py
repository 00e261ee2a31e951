"""The test OpenID Provider and its headless browser work by themselves, without the service:
discovery, the authorization code flow with PKCE finished by Authlib's client and its ID
token checked against the provider's JWKS, consent denied, key rotation, down and hung."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.live_server import free_port
from tests.support.oidc_browser import OidcBrowser, SignInFailed, query
from tests.support.oidc_provider import OidcAccount, OidcClient, OidcProvider

# Nothing listens there: the browser stops before the callback, and these tests never follow.
CALLBACK = f"http://127.0.0.1:{free_port()}/oidc/test/callback"
BASIC = OidcClient("tasks-basic", "basic-secret-0123456789", [CALLBACK])
POST = OidcClient("tasks-post", "post-secret-0123456789", [CALLBACK], "client_secret_post")
ALICE = OidcAccount("alice-sub", "alice@example.com", name="Alice Example")
BOB = OidcAccount("bob-sub", "bob@example.com", email_verified=False, name="Bob Example")


def start(tmp_path: Path) -> OidcProvider:
    return OidcProvider(
        clients=[BASIC, POST], accounts=[ALICE, BOB], log_path=tmp_path / "provider.log"
    )


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with start(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture
def own_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    """For the tests that stop, freeze or restart it."""
    with start(tmp_path) as running:
        yield running


class Flow:
    """What the service does with Authlib: the authorization URL with state, nonce and a
    PKCE S256 challenge; then the code exchanged and the ID token checked."""

    def __init__(self, provider: OidcProvider, client: OidcClient) -> None:
        self.provider, self.client = provider, client
        self.metadata = provider.metadata()
        self.oauth = OAuth2Session(
            client.client_id,
            client.client_secret,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            scope="openid email profile",
            redirect_uri=CALLBACK,
            code_challenge_method="S256",
        )
        self.nonce, self.verifier = generate_token(20), generate_token(48)
        self.url, self.state = self.oauth.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=self.verifier, nonce=self.nonce
        )

    def exchange(self, callback: str) -> dict[str, Any]:
        token: dict[str, Any] = self.oauth.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=self.verifier,
        )
        return token

    def id_token(self, token: dict[str, Any]) -> jwt.Token:
        keys = KeySet.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=5).json())
        decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.provider.issuer},
            aud={"essential": True, "value": self.client.client_id},
            nonce={"essential": True, "value": self.nonce},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(decoded.claims)
        return decoded


def test_the_discovery_document_describes_the_provider(provider: OidcProvider) -> None:
    response = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=5)
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == provider.issuer == f"http://127.0.0.1:{provider.port}"
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert metadata[endpoint].startswith(f"{provider.issuer}/")
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert {"openid", "email", "profile"} <= set(metadata["scopes_supported"])
    assert {"email", "email_verified", "name"} <= set(metadata["claims_supported"])
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }


@pytest.mark.parametrize("client", [BASIC, POST], ids=lambda client: client.client_id)
@pytest.mark.parametrize("account", [ALICE, BOB], ids=lambda account: account.sub)
def test_a_code_flow_with_pkce_ends_in_a_signed_id_token(
    provider: OidcProvider, client: OidcClient, account: OidcAccount
) -> None:
    flow = Flow(provider, client)
    callback = OidcBrowser(provider.issuer).sign_in(flow.url, account)

    assert callback.startswith(f"{CALLBACK}?")
    params = query(callback)
    assert params["state"] == flow.state
    assert params["iss"] == provider.issuer
    id_token = flow.id_token(flow.exchange(callback))
    assert id_token.header["kid"] == provider.kid
    claims = id_token.claims
    assert claims["sub"] == account.sub
    assert claims["email"] == account.email
    assert claims["email_verified"] is account.email_verified
    assert claims["name"] == account.name
    assert claims["nonce"] == flow.nonce


def test_a_code_is_single_use_and_bound_to_its_verifier(provider: OidcProvider) -> None:
    flow = Flow(provider, BASIC)
    callback = OidcBrowser(provider.issuer).sign_in(flow.url, ALICE)
    flow.verifier = generate_token(48)
    with pytest.raises(OAuthError, match="invalid_grant"):
        flow.exchange(callback)

    flow = Flow(provider, BASIC)
    callback = OidcBrowser(provider.issuer).sign_in(flow.url, ALICE)
    flow.exchange(callback)
    with pytest.raises(OAuthError, match="invalid_grant"):
        flow.exchange(callback)


def test_pkce_is_required(provider: OidcProvider) -> None:
    flow = Flow(provider, BASIC)
    without_pkce, _ = flow.oauth.create_authorization_url(
        flow.metadata["authorization_endpoint"], state=flow.state, nonce=flow.nonce
    )
    assert "code_challenge" not in without_pkce
    callback = OidcBrowser(provider.issuer).sign_in(without_pkce, ALICE)
    assert callback.startswith(f"{CALLBACK}?")
    assert query(callback)["error"] == "invalid_request"
    assert "PKCE" in query(callback)["error_description"]


def test_denied_consent_returns_access_denied(provider: OidcProvider) -> None:
    flow = Flow(provider, BASIC)
    callback = OidcBrowser(provider.issuer).deny(flow.url, ALICE)
    assert callback.startswith(f"{CALLBACK}?")
    params = query(callback)
    assert params["error"] == "access_denied"
    assert params["state"] == flow.state
    assert "code" not in params


def test_a_wrong_password_is_refused(provider: OidcProvider) -> None:
    flow = Flow(provider, BASIC)
    impostor = OidcAccount(ALICE.sub, ALICE.email, password="not-the-password")
    with pytest.raises(SignInFailed, match="401"):
        OidcBrowser(provider.issuer).sign_in(flow.url, impostor)


def test_a_browser_signed_in_once_skips_the_forms(provider: OidcProvider) -> None:
    browser = OidcBrowser(provider.issuer)
    browser.sign_in(Flow(provider, BASIC).url, ALICE)
    flow = Flow(provider, BASIC)
    # Another account: unused, since the provider's session cookie already names Alice.
    callback = browser.sign_in(flow.url, BOB)
    assert flow.id_token(flow.exchange(callback)).claims["sub"] == ALICE.sub


def test_an_unregistered_redirect_uri_is_an_error_page(provider: OidcProvider) -> None:
    flow = Flow(provider, BASIC)
    elsewhere = flow.url.replace("%2Foidc%2Ftest%2Fcallback", "%2Fsomewhere")
    assert elsewhere != flow.url
    with pytest.raises(SignInFailed, match="400"):
        OidcBrowser(provider.issuer).sign_in(elsewhere, ALICE)


def test_a_restart_with_rotated_keys_announces_a_new_kid(own_provider: OidcProvider) -> None:
    issuer, old_kid = own_provider.issuer, own_provider.kid

    def announced() -> list[str]:
        keys = requests.get(own_provider.metadata()["jwks_uri"], timeout=5).json()["keys"]
        assert all("d" not in key for key in keys), "a private key in the JWKS"
        return [key["kid"] for key in keys]

    assert announced() == [old_kid]
    own_provider.restart()
    assert (own_provider.issuer, announced()) == (issuer, [old_kid])
    own_provider.restart(rotate_keys=True)
    assert own_provider.issuer == issuer
    assert own_provider.kid != old_kid
    assert announced() == [own_provider.kid]

    flow = Flow(own_provider, BASIC)
    callback = OidcBrowser(own_provider.issuer).sign_in(flow.url, ALICE)
    assert flow.id_token(flow.exchange(callback)).header["kid"] == own_provider.kid


def test_a_provider_down_refuses_connections(own_provider: OidcProvider) -> None:
    with own_provider.down(), pytest.raises(requests.ConnectionError):
        requests.get(own_provider.discovery_url, timeout=5)
    assert own_provider.metadata()["issuer"] == own_provider.issuer


def test_a_hung_provider_accepts_and_never_answers(own_provider: OidcProvider) -> None:
    with own_provider.hung(), pytest.raises(requests.ReadTimeout):
        requests.get(own_provider.discovery_url, timeout=0.5)
    assert own_provider.metadata()["issuer"] == own_provider.issuer
    own_provider.freeze()
    own_provider.stop()  # a frozen provider still stops
    with pytest.raises(requests.ConnectionError):
        requests.get(own_provider.discovery_url, timeout=5)
