"""The second factor (TOTP and recovery codes), through the HTTP API: enrolment, the login
in two steps, codes accepted once, the routes that need a code, turning it off. Codes are
computed here with pyotp from the secret the enrolment answers (tests/support)."""

import concurrent.futures
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from service.services.passwords import RESET_SUBJECT
from tests.support.api import PASSWORD, Api, Tokens
from tests.support.live_server import LiveServer, StartServer
from tests.support.second_factor import enrol, enrolled, first_half, login_with
from tests.support.smtp_server import SmtpServer

RESET_TOKEN = re.compile(r"^ {4}([0-9]+\.[A-Za-z0-9_-]{43,})\r?$", re.MULTILINE)
LOGIN_FIELDS = {"access_token", "refresh_token", "token_type", "expires_in", "device_token"}


@pytest.fixture(scope="module")
def server(start_server: StartServer, smtp: SmtpServer) -> Iterator[LiveServer]:
    server = start_server(
        workers=2,
        MFA_ISSUER="Tasks test",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        PASSWORD_RESET_RATE_LIMIT="1000/hour",
        MFA_RATE_LIMIT="1000/15minutes",
    )
    yield server
    # Now rather than at the session's end: its PostgreSQL connections are shared.
    server.stop()


@pytest.fixture
def api(server: LiveServer) -> Api:
    return Api(server.url)


def _sessions(api: Api, tokens: Tokens) -> list[dict[str, Any]]:
    response = api.get("/sessions", headers=tokens.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_enrolment_is_pending_until_a_code_confirms_it(api: Api) -> None:
    email = api.register()
    tokens = api.login(email)
    wrong = api.post("/me/mfa/totp", json={"password": "not the password"}, headers=tokens.headers)
    assert wrong.status_code == 403
    app, body = enrol(api, tokens)
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    uri = urlsplit(body["otpauth_uri"])
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert query["secret"] == [body["secret"]] and query["issuer"] == ["Tasks test"]
    assert email in unquote(uri.path)
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")
    # Pending: nothing changes for logins yet.
    assert api.get("/me", headers=tokens.headers).json()["mfa_enabled"] is False
    assert api.post("/login", json={"email": email, "password": PASSWORD}).status_code == 200
    refused = api.post(
        "/me/mfa/totp/confirm", json={"code": app.wrong_code()}, headers=tokens.headers
    )
    assert refused.status_code == 400, refused.text
    confirmed = api.post("/me/mfa/totp/confirm", json={"code": app.code()}, headers=tokens.headers)
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code) for code in codes)
    assert api.get("/me", headers=tokens.headers).json()["mfa_enabled"] is True
    # On: neither a second confirmation nor a new enrolment.
    again = api.post("/me/mfa/totp/confirm", json={"code": app.code()}, headers=tokens.headers)
    assert again.status_code == 409
    assert (
        api.post("/me/mfa/totp", json={"password": PASSWORD}, headers=tokens.headers).status_code
        == 409
    )


def test_an_enrolment_left_unconfirmed_expires(start_server: StartServer) -> None:
    server = start_server(MFA_ENROLMENT_TTL_SECONDS="3")
    try:
        api = Api(server.url)
        tokens = api.login(api.register())
        app, _ = enrol(api, tokens)
        enrolled_at = time.monotonic()
        # Its window is over 3 s after PostgreSQL dated it, which was before the answer.
        while time.monotonic() < enrolled_at + 3.2:
            time.sleep(0.1)
        late = api.post("/me/mfa/totp/confirm", json={"code": app.code()}, headers=tokens.headers)
        assert late.status_code == 409 and "expired" in late.json()["detail"], late.text
        assert api.get("/me", headers=tokens.headers).json()["mfa_enabled"] is False

        app, _ = enrol(api, tokens)  # a new enrolment, confirmed in time
        confirmed = api.post(
            "/me/mfa/totp/confirm", json={"code": app.code()}, headers=tokens.headers
        )
        assert confirmed.status_code == 200, confirmed.text
        assert api.get("/me", headers=tokens.headers).json()["mfa_enabled"] is True
    finally:
        server.stop()


def test_a_new_enrolment_replaces_the_pending_secret(api: Api) -> None:
    tokens = api.login(api.register())
    first, _ = enrol(api, tokens)
    second, _ = enrol(api, tokens)
    stale = api.post("/me/mfa/totp/confirm", json={"code": first.code()}, headers=tokens.headers)
    assert stale.status_code == 400
    fresh = api.post("/me/mfa/totp/confirm", json={"code": second.code()}, headers=tokens.headers)
    assert fresh.status_code == 200


def test_confirming_without_an_enrolment_is_a_conflict(api: Api) -> None:
    tokens = api.new_user()
    response = api.post("/me/mfa/totp/confirm", json={"code": "123456"}, headers=tokens.headers)
    assert response.status_code == 409


def test_the_password_alone_starts_no_session_and_a_code_completes_the_login(api: Api) -> None:
    user = enrolled(api)
    before = _sessions(api, user.tokens)
    response = api.post("/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403, response.text
    body = response.json()
    assert set(body) == {"detail", "code", "mfa_token", "methods", "expires_in"}
    assert body["code"] == "mfa_required"
    assert body["methods"] == ["totp", "recovery_code"] and body["expires_in"] == 300
    assert response.headers["cache-control"] == "no-store"
    assert _sessions(api, user.tokens) == before
    # A wrong password is still the plain 401: the factor is asked only after the password.
    wrong = api.post("/login", json={"email": user.email, "password": "not the password"})
    assert wrong.status_code == 401 and "mfa_token" not in wrong.json()

    done = api.post("/login/mfa", json={"mfa_token": body["mfa_token"], "code": user.app.code()})
    assert done.status_code == 200, done.text
    assert set(done.json()) == LOGIN_FIELDS
    assert done.headers["cache-control"] == "no-store"
    [new] = [s for s in _sessions(api, user.tokens) if s["id"] not in {b["id"] for b in before}]
    assert new["auth_methods"] == ["password", "totp"]
    [mine] = [s for s in _sessions(api, user.tokens) if s["current"]]
    assert mine["auth_methods"] == ["password"]  # started before the factor was on
    assert api.get("/me", headers=_bearer(done.json())).status_code == 200


def test_a_totp_code_is_accepted_once(api: Api) -> None:
    user = enrolled(api)
    assert login_with(api, user.email, user.app.code()).status_code == 200
    replay = login_with(api, user.email, user.app.last_code)
    assert replay.status_code == 401
    assert replay.headers["www-authenticate"] == "Bearer"


def test_two_logins_with_one_code_at_once_start_one_session(api: Api, server: LiveServer) -> None:
    user = enrolled(api)
    tokens = [first_half(api, user.email)["mfa_token"] for _ in range(2)]
    code = user.app.code()

    def second_half(token: str) -> int:
        # A connection each: the two run at once, on both workers.
        return requests.post(
            f"{server.url}/login/mfa",
            json={"mfa_token": token, "code": code},
            headers={"Connection": "close"},
            timeout=30,
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(second_half, tokens))
    assert statuses == [200, 401]


def test_a_recovery_code_logs_in_once_in_any_spelling(api: Api) -> None:
    user = enrolled(api)
    code = user.recovery_codes[0]
    typed = f" {code.upper().replace('-', ' ')} "
    done = login_with(api, user.email, typed)
    assert done.status_code == 200, done.text
    [session] = [s for s in _sessions(api, user.tokens) if not s["current"]]
    assert session["auth_methods"] == ["password", "recovery_code"]
    assert login_with(api, user.email, code).status_code == 401
    assert login_with(api, user.email, user.recovery_codes[1]).status_code == 200


def test_an_mfa_token_is_spent_by_its_login_and_dies_after_five_wrong_codes(api: Api) -> None:
    user = enrolled(api)
    token = first_half(api, user.email)["mfa_token"]
    answers = [
        api.post("/login/mfa", json={"mfa_token": token, "code": user.app.wrong_code()})
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [401] * 5
    dead = api.post("/login/mfa", json={"mfa_token": token, "code": user.app.code()})
    assert dead.status_code == 401
    # One answer for a wrong code, a dead token and a malformed one.
    malformed = api.post("/login/mfa", json={"mfa_token": "not a token", "code": "123456"})
    assert malformed.status_code == 401
    assert answers[0].json() == dead.json() == malformed.json()

    token = first_half(api, user.email)["mfa_token"]
    fresh = user.app.code()
    assert api.post("/login/mfa", json={"mfa_token": token, "code": fresh}).status_code == 200
    spent = api.post("/login/mfa", json={"mfa_token": token, "code": user.recovery_codes[0]})
    assert spent.status_code == 401


def test_a_device_token_does_not_skip_the_second_factor(api: Api) -> None:
    email = api.register()
    plain = api.post("/login", json={"email": email, "password": PASSWORD}).json()
    device = plain["device_token"]
    tokens = api.login(email)
    app, _ = enrol(api, tokens)
    assert api.post("/me/mfa/totp/confirm", json={"code": app.code()}, headers=tokens.headers).ok
    challenge = first_half(api, email, device_token=device)
    done = api.post("/login/mfa", json={"mfa_token": challenge["mfa_token"], "code": app.code()})
    assert done.status_code == 200, done.text
    renewed = done.json()["device_token"]
    assert renewed.split(".")[:2] == device.split(".")[:2]  # the same device, renewed


def test_a_password_change_needs_a_code_when_the_factor_is_on(api: Api) -> None:
    user = enrolled(api)
    change = {"current_password": PASSWORD, "new_password": "a changed passphrase here"}
    missing = api.post("/me/password", json=change, headers=user.tokens.headers)
    assert missing.status_code == 403, missing.text
    wrong = api.post(
        "/me/password", json={**change, "code": user.app.wrong_code()}, headers=user.tokens.headers
    )
    assert wrong.status_code == 403
    # The password is checked first: a wrong one spends no code.
    code = user.app.code()
    bad_password = {**change, "current_password": "not the password", "code": code}
    assert (
        api.post("/me/password", json=bad_password, headers=user.tokens.headers).status_code == 403
    )
    done = api.post("/me/password", json={**change, "code": code}, headers=user.tokens.headers)
    assert done.status_code == 200, done.text
    # Still on with the new password.
    response = api.post("/login", json={"email": user.email, "password": change["new_password"]})
    assert response.status_code == 403 and response.json()["code"] == "mfa_required"


def test_deleting_the_account_needs_a_code_when_the_factor_is_on(api: Api) -> None:
    user = enrolled(api)
    missing = api.delete("/me", json={"password": PASSWORD}, headers=user.tokens.headers)
    assert missing.status_code == 403
    wrong = api.delete(
        "/me", json={"password": PASSWORD, "code": "zzzzz-zzzzz"}, headers=user.tokens.headers
    )
    assert wrong.status_code == 403
    deleted = api.delete(
        "/me",
        json={"password": PASSWORD, "code": user.recovery_codes[0]},
        headers=user.tokens.headers,
    )
    assert deleted.status_code == 200, deleted.text
    api.register(user.email)  # the address again: a new account, without the factor
    assert api.post("/login", json={"email": user.email, "password": PASSWORD}).status_code == 200


def _stored_recovery_codes(database_url: str, user_id: int) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            count: int = connection.execute(
                text("SELECT count(*) FROM recovery_codes WHERE user_id = :id"), {"id": user_id}
            ).scalar_one()
            return count
    finally:
        engine.dispose()


def test_turning_the_factor_off_needs_the_password_and_a_code(api: Api, database_url: str) -> None:
    user = enrolled(api)
    user_id = api.get("/me", headers=user.tokens.headers).json()["id"]
    assert _stored_recovery_codes(database_url, user_id) == 10
    headers = user.tokens.headers
    code = user.app.code()
    refused = [
        api.request("DELETE", "/me/mfa/totp", json=body, headers=headers).status_code
        for body in (
            {"password": "not the password", "code": code},
            {"password": PASSWORD, "code": user.app.wrong_code()},
        )
    ]
    assert refused == [403, 403]
    off = api.request(
        "DELETE", "/me/mfa/totp", json={"password": PASSWORD, "code": code}, headers=headers
    )
    assert off.status_code == 200, off.text
    assert api.get("/me", headers=headers).json()["mfa_enabled"] is False
    assert _stored_recovery_codes(database_url, user_id) == 0
    assert api.post("/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    again = api.request(
        "DELETE",
        "/me/mfa/totp",
        json={"password": PASSWORD, "code": user.recovery_codes[0]},
        headers=headers,
    )
    assert again.status_code == 409
    # A password change needs no code any more.
    change = {"current_password": PASSWORD, "new_password": "a changed passphrase here"}
    assert api.post("/me/password", json=change, headers=headers).status_code == 200


def test_new_recovery_codes_end_the_old_ones(api: Api) -> None:
    user = enrolled(api)
    body = {"password": PASSWORD, "code": user.app.code()}
    response = api.post("/me/mfa/recovery-codes", json=body, headers=user.tokens.headers)
    assert response.status_code == 200, response.text
    codes = response.json()["recovery_codes"]
    assert len(codes) == 10 and not set(codes) & set(user.recovery_codes)
    assert login_with(api, user.email, user.recovery_codes[0]).status_code == 401
    assert login_with(api, user.email, codes[0]).status_code == 200
    wrong = {"password": PASSWORD, "code": user.app.wrong_code()}
    assert (
        api.post("/me/mfa/recovery-codes", json=wrong, headers=user.tokens.headers).status_code
        == 403
    )


def _reset_password(api: Api, smtp: SmtpServer, email: str, new_password: str) -> None:
    assert api.post("/password/forgot", json={"email": email}).status_code == 202
    match = RESET_TOKEN.search(smtp.wait_for(email, subject=RESET_SUBJECT)[0].get_content())
    assert match
    reset = api.post("/password/reset", json={"token": match[1], "new_password": new_password})
    assert reset.status_code == 200, reset.text


def test_a_password_reset_leaves_the_factor_on(api: Api, smtp: SmtpServer) -> None:
    user = enrolled(api)
    # A login waiting for its code when the password is reset does not outlive it.
    stale = first_half(api, user.email)["mfa_token"]
    new_password = "a fresh start of a passphrase"
    _reset_password(api, smtp, user.email, new_password)
    code = user.app.code()
    assert api.post("/login/mfa", json={"mfa_token": stale, "code": code}).status_code == 401
    response = api.post("/login", json={"email": user.email, "password": new_password})
    assert response.status_code == 403 and response.json()["code"] == "mfa_required"
    done = api.post("/login/mfa", json={"mfa_token": response.json()["mfa_token"], "code": code})
    assert done.status_code == 200, done.text


def test_the_secret_is_stored_sealed_and_the_codes_hashed(api: Api, database_url: str) -> None:
    user = enrolled(api)
    me = api.get("/me", headers=user.tokens.headers).json()
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            [sealed] = connection.execute(
                text("SELECT secret_sealed FROM second_factors WHERE user_id = :id"),
                {"id": me["id"]},
            ).scalars()
            hashes = (
                connection.execute(
                    text("SELECT code_hash FROM recovery_codes WHERE user_id = :id"),
                    {"id": me["id"]},
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    secret = user.enrolment["secret"]
    assert secret not in sealed and secret.lower() not in sealed.lower()
    assert len(hashes) == 10
    plain = {code.replace("-", "") for code in user.recovery_codes}
    assert not any(code in h for h in hashes for code in plain)


def test_secrets_codes_and_tokens_never_reach_the_logs(api: Api, server: LiveServer) -> None:
    user = enrolled(api)
    token = first_half(api, user.email)["mfa_token"]
    assert api.post("/login/mfa", json={"mfa_token": token, "code": user.recovery_codes[0]}).ok
    logs = server.logs()
    assert user.enrolment["secret"] not in logs
    assert token.split(".")[1] not in logs
    for code in user.recovery_codes:
        assert code not in logs and code.replace("-", "") not in logs
    for event in ("mfa_enrolment_started", "mfa_enabled", "mfa_required", "mfa_recovery_code_used"):
        assert f'"{event}"' in logs, event


def test_openapi_shows_both_answers_of_login(api: Api) -> None:
    document = api.get("/openapi.json").json()
    responses = document["paths"]["/login"]["post"]["responses"]
    schemas = document["components"]["schemas"]
    ok = responses["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    second = responses["403"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schemas[ok]["required"]) == LOGIN_FIELDS
    assert set(schemas[second]["required"]) == {
        "detail",
        "code",
        "mfa_token",
        "methods",
        "expires_in",
    }
    assert "/login/mfa" in document["paths"]
