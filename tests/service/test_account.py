"""The caller's own account: GET /me, POST /me/password, DELETE /me, the session cap and
the password policy."""

import concurrent.futures
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support.api import PASSWORD, Api, Tokens, unique_email
from tests.support.live_server import LiveServer, StartServer

NEW_PASSWORD = "a brand new passphrase"


def _change(api: Api, tokens: Tokens, current: str, new: str) -> requests.Response:
    body = {"current_password": current, "new_password": new}
    return api.post("/me/password", json=body, headers=tokens.headers)


def _sessions_live(api: Api, *pairs: Tokens) -> list[bool]:
    return [api.get("/tasks", headers=pair.headers).status_code == 200 for pair in pairs]


def test_me_is_the_callers_account(api: Api) -> None:
    email = api.register()
    tokens = api.login(email)
    response = api.get("/me", headers=tokens.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "email", "created_at", "email_verified", "mfa_enabled"}
    assert body["email"] == email
    assert body["mfa_enabled"] is False
    assert response.headers["cache-control"] == "no-store"
    assert api.get("/me").status_code == 401


def test_a_password_change_ends_every_other_session(two_workers: LiveServer) -> None:
    """Seen by both workers of a 2-worker server, and written to the audit log."""
    api = Api(two_workers.url)
    email = api.register()
    caller, other, another = api.login(email), api.login(email), api.login(email)
    response = _change(api, caller, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["revoked"] == 2
    assert set(response.json()) == {"detail", "revoked"}
    # On whichever worker answers: new connections spread over both.
    for _ in range(4):
        assert requests.get(f"{two_workers.url}/tasks", headers=other.headers, timeout=10,
                            ).status_code == 401  # fmt: skip
        assert requests.get(f"{two_workers.url}/tasks", headers=another.headers, timeout=10,
                            ).status_code == 401  # fmt: skip
        assert requests.get(f"{two_workers.url}/tasks", headers=caller.headers, timeout=10,
                            ).status_code == 200  # fmt: skip
    refresh = api.post("/refresh", json={"refresh_token": other.refresh_token})
    assert refresh.status_code == 401
    assert api.post("/login", json={"email": email, "password": PASSWORD}).status_code == 401
    assert api.login(email, NEW_PASSWORD).access_token
    user_id = api.get("/me", headers=caller.headers).json()["id"]
    audit = [line for line in two_workers.logs().splitlines() if f'"user_id":{user_id}' in line]
    assert any('"password_changed"' in line for line in audit)
    assert any('"reason":"password_change"' in line and '"count":2' in line for line in audit)


def test_a_wrong_current_password_changes_nothing(api: Api) -> None:
    email = api.register()
    caller, other = api.login(email), api.login(email)
    response = _change(api, caller, "not the password", NEW_PASSWORD)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert _sessions_live(api, caller, other) == [True, True]
    assert api.login(email).access_token  # the old password still works
    assert api.post("/login", json={"email": email, "password": NEW_PASSWORD}).status_code == 401


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("shor7", "at least 8 characters"),
        ("x" * 129, "at most 128 characters"),
        ("iloveyou", "most commonly used"),
        ("12345678", "most commonly used"),
        ("Baseball", "most commonly used"),
    ],
)
def test_the_policy_refuses_weak_new_passwords_without_echoing_them(
    api: Api, password: str, problem: str
) -> None:
    register = api.post("/register", json={"email": unique_email(), "password": password})
    tokens = api.new_user()
    change = _change(api, tokens, PASSWORD, password)
    for response in (register, change):
        assert response.status_code == 422, response.text
        assert problem in response.text
        assert f'"{password}"' not in response.text
    assert _sessions_live(api, tokens) == [True]


def test_password_changes_count_against_the_login_limits(start_server: StartServer) -> None:
    api = Api(start_server(LOGIN_RATE_LIMIT="3/minute").url)
    email = api.register()
    tokens = api.login(email)
    # The login spent one attempt of this client's bucket for the account: the changes
    # share it, as guesses of the same password.
    statuses = [_change(api, tokens, f"guess number {n}", NEW_PASSWORD).status_code
                for n in range(3)]  # fmt: skip
    assert statuses == [403, 403, 429]
    assert api.post("/login", json={"email": email, "password": PASSWORD}).status_code == 429


def test_deleting_the_account_removes_it_and_every_session(
    api: Api, database_url: str, server: LiveServer
) -> None:
    email = api.register()
    caller, other = api.login(email), api.login(email)
    user_id = api.get("/me", headers=caller.headers).json()["id"]
    api.create_task(caller, title="mine")
    refused = api.request(
        "DELETE", "/me", json={"password": "not the password"}, headers=caller.headers
    )
    assert refused.status_code == 403
    assert _sessions_live(api, caller, other) == [True, True]

    response = api.request("DELETE", "/me", json={"password": PASSWORD}, headers=caller.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": user_id, "deleted": True}
    assert _sessions_live(api, caller, other) == [False, False]
    assert api.post("/login", json={"email": email, "password": PASSWORD}).status_code == 401
    engine = create_engine(database_url)
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM tasks WHERE owner_id = :id"), {"id": user_id}
        ).scalar_one()
    engine.dispose()
    assert left == 0
    # The address is free again.
    assert api.post("/register", json={"email": email, "password": PASSWORD}).status_code == 201
    events = [line for line in server.logs().splitlines() if f'"user_id":{user_id}' in line]
    assert any('"account_deleted"' in line for line in events)
    assert any('"reason":"account_deleted"' in line for line in events)


def test_a_login_beyond_the_cap_ends_the_least_recently_used_session(
    start_server: StartServer,
) -> None:
    # Idle timeout 20 s: "last seen" is written at most every 2 s.
    server = start_server(MAX_SESSIONS_PER_USER="3", SESSION_IDLE_TIMEOUT_SECONDS="20")
    api = Api(server.url)
    email = api.register()
    first, second, third = api.login(email), api.login(email), api.login(email)
    time.sleep(2.1)
    assert _sessions_live(api, first) == [True]  # now more recently used than second
    fourth = api.login(email)
    assert _sessions_live(api, first, second, third, fourth) == [True, False, True, True]
    assert len(api.get("/sessions", headers=fourth.headers).json()["items"]) == 3
    assert '"reason":"evicted"' in server.logs()


def test_concurrent_logins_never_leave_more_than_the_cap(start_server: StartServer) -> None:
    server = start_server(workers=2, MAX_SESSIONS_PER_USER="3")
    api = Api(server.url)
    email = api.register()

    def login(_: int) -> Tokens:
        body = {"email": email, "password": PASSWORD}
        response = requests.post(f"{server.url}/login", json=body, timeout=60)
        assert response.status_code == 200, response.text
        data = response.json()
        return Tokens(data["access_token"], data["refresh_token"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(login, range(8)))
    assert sum(_sessions_live(api, *pairs)) == 3
    live = next(pair for pair in pairs if _sessions_live(api, pair)[0])
    assert len(api.get("/sessions", headers=live.headers).json()["items"]) == 3


@pytest.fixture(scope="module")
def two_workers(start_server: StartServer) -> LiveServer:
    return start_server(workers=2)
