"""A login code bound to the front end that began the sign-in (RFC 7636's S256, between the
front end and this service), against a real provider: the code is traded only with the
verifier of the challenge the sign-in began with, so a return URL forwarded to somebody
else (login CSRF: a victim signed in to the attacker's account) signs nobody in. With
OIDC_REQUIRE_CODE_CHALLENGE, a sign-in cannot begin without one."""

import base64
import hashlib
import secrets
from collections.abc import Iterator

import pytest

from tests.support.live_server import StartServer
from tests.support.oidc_provider import OidcAccount
from tests.support.oidc_service import Site, account, start_site

BOUND = account("bound")
ATTACKER = account("attacker")
UNBOUND = account("unbound")
ACCOUNTS = [BOUND, ATTACKER, UNBOUND]
UNKNOWN_CODE = {"detail": "The login code is unknown, used or expired"}


@pytest.fixture(scope="module")
def site(start_server: StartServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    running = start_site(
        start_server,
        tmp_path_factory.mktemp("oidc-bound"),
        ACCOUNTS,
        OIDC_REQUIRE_CODE_CHALLENGE="true",
    )
    yield running
    running.stop()


def pair() -> tuple[str, str]:
    """A verifier the front end keeps, and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def login_code(site: Site, who: OidcAccount, challenge: str) -> str:
    start = f"{site.server.url}/oidc/corp/authorize?code_challenge={challenge}"
    landed = site.sign_in("corp", who, start=start)
    assert set(landed) == {"login_code"}, landed
    return landed["login_code"]


def trade(site: Site, code: str, verifier: str | None) -> tuple[int, object]:
    body = {"login_code": code} | ({"code_verifier": verifier} if verifier else {})
    response = site.api.post("/oidc/token", json=body)
    return response.status_code, response.json()


def test_the_login_code_is_traded_only_with_its_verifier(site: Site) -> None:
    verifier, challenge = pair()
    # No verifier: refused, and the code is spent.
    code = login_code(site, BOUND, challenge)
    assert trade(site, code, None) == (400, UNKNOWN_CODE)
    assert trade(site, code, verifier) == (400, UNKNOWN_CODE)
    # Another verifier: the same.
    code = login_code(site, BOUND, challenge)
    assert trade(site, code, pair()[0]) == (400, UNKNOWN_CODE)
    # Its own: a session.
    code = login_code(site, BOUND, challenge)
    status, body = trade(site, code, verifier)
    assert status == 200 and isinstance(body, dict) and body["token_type"] == "bearer"
    assert '"reason":"invalid_code_verifier"' in site.server.logs()
    assert verifier not in site.server.logs()


def test_a_forwarded_return_url_signs_nobody_in(site: Site) -> None:
    # The attacker signs in to their own account and stops at the return URL; the victim's
    # front end, opening it, holds only a verifier of its own.
    _, attackers_challenge = pair()
    code = login_code(site, ATTACKER, attackers_challenge)
    victims_verifier, _ = pair()
    assert trade(site, code, victims_verifier) == (400, UNKNOWN_CODE)


def test_a_sign_in_cannot_begin_without_a_challenge_when_required(site: Site) -> None:
    response = site.api.get("/oidc/corp/authorize", allow_redirects=False)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("code_challenge is required")
    assert "set-cookie" not in response.headers
    malformed = site.api.get("/oidc/corp/authorize?code_challenge=short", allow_redirects=False)
    assert malformed.status_code == 422
    verifier, challenge = pair()
    code = login_code(site, UNBOUND, challenge)
    bad_verifier = site.api.post("/oidc/token", json={"login_code": code, "code_verifier": "x"})
    assert bad_verifier.status_code == 422  # not of a verifier's shape: nothing spent
    assert trade(site, code, verifier)[0] == 200
