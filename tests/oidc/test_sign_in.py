"""Signing in with an OpenID Connect provider, through the service, against a real provider
(oidc-provider on loopback) driven by a headless browser: accounts made, found again and
never linked by email alone; state and login codes single use; linking, unlinking and the
last way to sign in; every revocation on a session made this way."""

import base64
import hashlib
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.api import PASSWORD, Api, Tokens
from tests.support.live_server import StartServer
from tests.support.oidc_browser import query
from tests.support.oidc_service import RETURN_URL, Site, account, start_site
from tests.support.second_factor import enrolled

NEW = account("new")
AGAIN = account("again")
UNVERIFIED = account("unverified", email_verified=False)
TAKEN = account("taken")
DENIER = account("denier")
STATEFUL = account("stateful")
CODES = account("codes")
LINKER = account("linker")
LINKER_ELSEWHERE = account("linker-other")
OWNER = account("owner")
INTRUDER = account("intruder")
REVOKER = account("revoker")
HOSTILE = account("hostile")
GUARDED = account("guarded")
VICTIM = account("victim")
RACED = account("raced")
LINKER_CODES = account("linker-codes")
ACCOUNTS = [
    NEW, AGAIN, UNVERIFIED, TAKEN, DENIER, STATEFUL, CODES, LINKER, LINKER_ELSEWHERE, OWNER,
    INTRUDER, REVOKER, HOSTILE, GUARDED, VICTIM, RACED, LINKER_CODES,
]  # fmt: skip
LOGIN_BODY = {"access_token", "refresh_token", "token_type", "expires_in", "device_token"}
UNKNOWN_CODE = {"detail": "The login code is unknown, used or expired"}
UNKNOWN_LINK_CODE = {"detail": "The link code is unknown, used, expired or another account's"}


@pytest.fixture(scope="module")
def site(start_server: StartServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    running = start_site(
        start_server, tmp_path_factory.mktemp("oidc-site"), ACCOUNTS, names=("corp", "other")
    )
    yield running
    running.stop()


def session_id(tokens: Tokens) -> str:
    payload = tokens.access_token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])


def identities(site: Site, tokens: Tokens) -> list[dict[str, object]]:
    response = site.api.get("/me/identities", headers=tokens.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_a_new_user_gets_an_account_without_a_password(site: Site) -> None:
    landed = site.sign_in("corp", NEW)
    assert set(landed) == {"login_code"}
    code = landed["login_code"]
    assert len(code.split(".")[1]) >= 43  # 256 random bits
    response = site.exchange(code)
    assert response.status_code == 200, response.text
    assert set(response.json()) == LOGIN_BODY
    assert response.headers["cache-control"] == "no-store"
    tokens = Tokens(response.json()["access_token"], response.json()["refresh_token"])

    account = site.me(tokens)
    assert (account["email"], account["email_verified"]) == (NEW.email, True)
    [identity] = identities(site, tokens)
    assert (identity["provider"], identity["subject"], identity["email"]) == (
        "corp",
        NEW.sub,
        NEW.email,
    )
    sessions = site.api.get("/sessions", headers=tokens.headers).json()["items"]
    assert [item["auth_methods"] for item in sessions] == [["oidc:corp"]]
    # No password: a login with any is the usual 401, like a wrong one.
    login = site.api.post("/login", json={"email": NEW.email, "password": PASSWORD})
    assert login.status_code == 401
    assert login.json() == {"detail": "Invalid email or password"}
    logs = site.server.logs()
    assert code not in logs and code.split(".")[1] not in logs
    assert tokens.access_token not in logs
    assert '"oidc_login"' in logs and '"identity_linked"' in logs
    assert site.metric("oidc_logins_total", 'provider="corp",outcome="created"') >= 1


def test_the_same_user_signs_in_again_to_the_same_account(site: Site) -> None:
    first = site.me(site.session("corp", AGAIN))
    again = site.me(site.session("corp", AGAIN))
    assert first["id"] == again["id"]
    assert site.metric("oidc_logins_total", 'provider="corp",outcome="signed_in"') >= 1


def test_an_address_the_provider_does_not_vouch_for_makes_no_account(site: Site) -> None:
    assert site.sign_in("corp", UNVERIFIED) == {"error": "email_unverified"}
    # Nothing was made: the address can still register.
    assert site.api.register(UNVERIFIED.email)


def test_an_existing_account_is_never_linked_by_email_alone(site: Site) -> None:
    api = site.api
    api.register(TAKEN.email)
    owner = api.login(TAKEN.email)
    assert site.sign_in("corp", TAKEN) == {"error": "account_exists"}
    assert identities(site, owner) == []
    # The owner, signed in, links it; from then on the provider signs in to that account.
    assert site.link("corp", TAKEN, owner) == {"linked": "corp"}
    assert [item["subject"] for item in identities(site, owner)] == [TAKEN.sub]
    assert site.me(site.session("corp", TAKEN))["id"] == site.me(owner)["id"]


def test_denied_consent_lands_with_access_denied(site: Site) -> None:
    assert site.sign_in("corp", DENIER, consent=False) == {"error": "access_denied"}


def test_a_state_is_single_use_and_bound_to_its_provider_and_browser(site: Site) -> None:
    browser, callback = site.to_callback("corp", STATEFUL)
    params = query(callback)
    base = callback.split("?")[0]
    # Tampered with: a state the service never issued.
    tampered = callback.replace(params["state"], params["state"][:-2] + "xx")
    assert site.land(browser, tampered) == {"error": "invalid_state"}
    # Handed to another browser (login CSRF): refused, and the state is spent by it.
    stranger = site.browser("corp")
    assert site.land(stranger, callback) == {"error": "invalid_state"}
    assert site.land(browser, callback) == {"error": "invalid_state"}

    browser, callback = site.to_callback("corp", STATEFUL, browser=browser)
    # At another provider's callback: not its state.
    other = callback.replace("/oidc/corp/callback", "/oidc/other/callback")
    assert site.land(browser, other) == {"error": "invalid_state"}

    browser, callback = site.to_callback("corp", STATEFUL, browser=browser)
    assert set(site.land(browser, callback)) == {"login_code"}
    # Replayed: the state is spent (and so is the provider's code).
    assert site.land(browser, callback) == {"error": "invalid_state"}
    # No state at all.
    assert site.land(browser, f"{base}?code=abc") == {"error": "invalid_state"}
    assert '"reason":"invalid_state"' in site.server.logs()


def test_a_login_code_is_single_use(site: Site) -> None:
    code = site.sign_in("corp", CODES)["login_code"]
    assert site.exchange(code).status_code == 200
    second = site.exchange(code)
    assert (second.status_code, second.json()) == (400, UNKNOWN_CODE)
    user_id, secret = code.split(".")
    for forged in ("", "garbage", f"{int(user_id) + 1}.{secret}", f"{user_id}.{'A' * 43}"):
        response = site.exchange(forged)
        assert (response.status_code, response.json()) == (400, UNKNOWN_CODE), forged


def test_a_code_challenge_binds_the_login_code_even_when_not_required(site: Site) -> None:
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    start = (
        f"{site.server.url}/oidc/corp/authorize?code_challenge={challenge.rstrip(b'=').decode()}"
    )
    code = site.sign_in("corp", CODES, start=start)["login_code"]
    refused = site.exchange(code)  # no verifier: the front end that began it would have one
    assert (refused.status_code, refused.json()) == (400, UNKNOWN_CODE)
    code = site.sign_in("corp", CODES, start=start)["login_code"]
    traded = site.api.post("/oidc/token", json={"login_code": code, "code_verifier": verifier})
    assert traded.status_code == 200, traded.text


def test_linking_and_the_last_way_to_sign_in(site: Site) -> None:
    tokens = site.session("corp", LINKER)
    only = site.api.delete("/me/identities/corp", headers=tokens.headers)
    assert only.status_code == 409  # no password, no other identity
    assert [item["provider"] for item in identities(site, tokens)] == ["corp"]

    assert site.link("other", LINKER_ELSEWHERE, tokens) == {"linked": "other"}
    assert [item["provider"] for item in identities(site, tokens)] == ["corp", "other"]
    assert site.me(site.session("other", LINKER_ELSEWHERE))["id"] == site.me(tokens)["id"]

    unlinked = site.api.delete("/me/identities/corp", headers=tokens.headers)
    assert (unlinked.status_code, unlinked.json()) == (200, {"provider": "corp", "unlinked": True})
    assert site.api.delete("/me/identities/other", headers=tokens.headers).status_code == 409
    assert site.api.delete("/me/identities/corp", headers=tokens.headers).status_code == 404
    # Unlinked, the corp identity is a stranger again, and its address the account's: it
    # is not linked back by that address alone.
    assert site.sign_in("corp", LINKER) == {"error": "account_exists"}
    assert '"identity_unlinked"' in site.server.logs()


def test_an_account_with_a_password_may_unlink_its_only_identity(site: Site) -> None:
    api = site.api
    owner = api.login(api.register(OWNER.email))
    assert site.link("corp", OWNER, owner) == {"linked": "corp"}
    assert api.delete("/me/identities/corp", headers=owner.headers).status_code == 200
    assert identities(site, owner) == []


def test_a_link_code_links_once_and_for_the_account_that_began_it(site: Site) -> None:
    api = site.api
    owner, stranger = api.new_user(), api.new_user()
    landed = site.begin_link("corp", LINKER_CODES, owner)
    assert set(landed) == {"link_code"} and len(landed["link_code"]) >= 43
    assert identities(site, owner) == []  # nothing linked by the callback itself
    # Another account's token: the code is not its own.
    refused = site.confirm_link(landed["link_code"], stranger)
    assert (refused.status_code, refused.json()) == (400, UNKNOWN_LINK_CODE)
    linked = site.confirm_link(landed["link_code"], owner)
    assert linked.status_code == 201, linked.text
    assert linked.json()["subject"] == LINKER_CODES.sub
    assert [item["subject"] for item in identities(site, owner)] == [LINKER_CODES.sub]
    assert identities(site, stranger) == []
    again = site.confirm_link(landed["link_code"], owner)
    assert (again.status_code, again.json()) == (400, UNKNOWN_LINK_CODE)
    for forged in ("", "A" * 43, "x" * 300, landed["link_code"] + "\ud800"):
        response = site.confirm_link(forged, owner)
        assert (response.status_code, response.json()) == (400, UNKNOWN_LINK_CODE), forged
    no_token = api.post("/me/identities", json={"link_code": landed["link_code"]})
    assert no_token.status_code == 401
    logs = site.server.logs()
    assert landed["link_code"] not in logs
    assert '"identity_link_refused"' in logs
    assert site.metric("oidc_logins_total", 'provider="corp",outcome="linked"') >= 1


def test_a_linking_url_handed_to_someone_else_links_nothing(site: Site) -> None:
    """An attacker begins a link on their own account and hands its URL to a victim, who is
    signed in at the provider: the victim's browser comes back with a code that only the
    attacker's account could spend, and the victim's front end, spending it with the
    victim's token, links nothing."""
    api = site.api
    attacker, victim = api.new_user(), api.new_user()
    landed = site.begin_link("corp", VICTIM, attacker)  # the victim signs in at the provider
    refused = site.confirm_link(landed["link_code"], victim)
    assert (refused.status_code, refused.json()) == (400, UNKNOWN_LINK_CODE)
    assert identities(site, attacker) == [] and identities(site, victim) == []
    # The victim's identity signs in to an account of its own, never to the attacker's.
    assert site.me(site.session("corp", VICTIM))["id"] != site.me(attacker)["id"]


def test_an_identity_linked_meanwhile_is_a_conflict_at_confirmation(site: Site) -> None:
    api = site.api
    first, second = api.new_user(), api.new_user()
    codes = [site.begin_link("corp", RACED, tokens)["link_code"] for tokens in (first, second)]
    assert site.confirm_link(codes[0], first).status_code == 201
    late = site.confirm_link(codes[1], second)
    assert late.status_code == 409
    assert late.json()["code"] == "identity_in_use"
    assert identities(site, second) == []


def test_an_identity_of_another_account_is_in_use(site: Site) -> None:
    site.session("corp", INTRUDER)  # INTRUDER's identity now has an account of its own
    api = site.api
    other = api.new_user()
    assert site.link("corp", INTRUDER, other) == {"error": "identity_in_use"}
    assert identities(site, other) == []
    # An account has one identity per provider.
    assert site.link("other", INTRUDER, other) == {"linked": "other"}
    assert site.link("other", HOSTILE, other) == {"error": "identity_in_use"}


@pytest.mark.parametrize("revocation", ["logout", "logout_all", "end_session", "refresh"])
def test_every_revocation_works_on_a_session_from_a_provider(site: Site, revocation: str) -> None:
    api = site.api
    tokens = site.session("corp", REVOKER)
    assert api.get("/tasks", headers=tokens.headers).status_code == 200
    if revocation == "logout":
        assert api.post("/logout", headers=tokens.headers).status_code == 200
    elif revocation == "logout_all":
        other = site.session("corp", REVOKER)
        assert api.post("/logout/all", headers=other.headers).status_code == 200
        assert api.get("/tasks", headers=other.headers).status_code == 401
    elif revocation == "end_session":
        other = site.session("corp", REVOKER)
        ended = api.delete(f"/sessions/{session_id(tokens)}", headers=other.headers)
        assert ended.status_code == 200
    else:
        refreshed = api.post("/refresh", json={"refresh_token": tokens.refresh_token})
        assert refreshed.status_code == 200
    assert api.get("/tasks", headers=tokens.headers).status_code == 401


def test_unknown_providers_are_404_and_the_list_names_the_configured_ones(site: Site) -> None:
    api = site.api
    for path in ("/oidc/nope/authorize", "/oidc/nope/callback?code=a&state=b"):
        response = api.get(path, allow_redirects=False)
        assert response.status_code == 404
        assert response.json() == {"detail": "No such identity provider"}
    tokens = api.new_user()
    assert api.post("/me/identities/nope", headers=tokens.headers).status_code == 404
    # Built from PUBLIC_BASE_URL, whatever Host the request names.
    listed = api.get("/oidc/providers", headers={"Host": "evil.example"}).json()
    assert listed == {
        "items": [
            {"name": name, "authorize_url": f"{site.server.url}/oidc/{name}/authorize"}
            for name in ("corp", "other")
        ]
    }


def test_the_redirect_to_the_provider_is_a_code_flow_with_pkce(site: Site) -> None:
    response = site.api.get(
        "/oidc/corp/authorize?redirect_uri=https://evil.example/",
        headers={"Host": "evil.example"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(site.providers["corp"].issuer + "/")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 32
    assert params["redirect_uri"] == f"{site.server.url}/oidc/corp/callback"
    assert params["scope"] == "openid email profile"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/oidc/" in cookie
    assert response.headers["cache-control"] == "no-store"
    assert "evil" not in location


def test_a_callback_lands_on_the_return_url_whatever_the_host(site: Site) -> None:
    response = site.api.get(
        "/oidc/corp/callback?state=unknown&code=x",
        headers={"Host": "evil.example"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert urlsplit(response.headers["location"]).netloc == urlsplit(RETURN_URL).netloc


def test_without_providers_the_routes_answer_404(api: Api) -> None:
    assert api.get("/oidc/providers").json() == {"items": []}
    assert api.get("/oidc/corp/authorize", allow_redirects=False).status_code == 404


def test_the_session_of_an_account_made_by_a_provider_can_set_a_password_by_mail_only(
    site: Site,
) -> None:
    # Without a password, every password check fails like a wrong password would.
    tokens = site.session("corp", NEW)
    change = site.api.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=tokens.headers,
    )
    assert change.status_code == 403


def test_a_provider_s_sign_in_still_asks_for_the_second_factor(site: Site) -> None:
    api = site.api
    owner = enrolled(api, GUARDED.email)
    assert site.link("corp", GUARDED, owner.tokens) == {"linked": "corp"}
    landed = site.sign_in("corp", GUARDED)
    answer = site.exchange(landed["login_code"])
    # The provider's word is the first half, as a password would be: no session yet.
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "mfa_required" and set(body["methods"]) == {"totp", "recovery_code"}
    done = api.post("/login/mfa", json={"mfa_token": body["mfa_token"], "code": owner.app.code()})
    assert done.status_code == 200, done.text
    tokens = Tokens(done.json()["access_token"], done.json()["refresh_token"])
    sessions = api.get("/sessions", headers=tokens.headers).json()["items"]
    [current] = [item for item in sessions if item["current"]]
    assert current["auth_methods"] == ["oidc:corp", "totp"]
