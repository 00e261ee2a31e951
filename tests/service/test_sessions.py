"""Refresh rotation with reuse detection, timeouts, and self-service session management."""

import concurrent.futures
import time
from datetime import datetime, timedelta

import pytest

from tests.support.api import Api, Tokens
from tests.support.live_server import StartServer


def _refresh(api: Api, refresh_token: str) -> Tokens | int:
    response = api.post("/refresh", json={"refresh_token": refresh_token})
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/json"
        return response.status_code
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert response.headers["cache-control"] == "no-store"
    return Tokens(body["access_token"], body["refresh_token"])


def test_refresh_token_is_opaque_and_long(api: Api) -> None:
    tokens = api.new_user()
    secret = tokens.refresh_token.rsplit(".", 1)[1]
    assert len(secret) >= 43  # 32 random bytes, base64url
    assert tokens.refresh_token.count(".") == 2  # not a JWT


def test_refresh_rotates_the_pair_and_kills_the_old_one(api: Api) -> None:
    old = api.new_user()
    new = _refresh(api, old.refresh_token)
    assert isinstance(new, Tokens)
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token
    assert api.get("/tasks", headers=new.headers).status_code == 200
    assert api.get("/tasks", headers=old.headers).status_code == 401


def test_refresh_keeps_the_same_session(api: Api) -> None:
    old = api.new_user()
    before = api.get("/sessions", headers=old.headers).json()["items"]
    new = _refresh(api, old.refresh_token)
    assert isinstance(new, Tokens)
    after = api.get("/sessions", headers=new.headers).json()["items"]
    assert [s["id"] for s in before] == [s["id"] for s in after]


def test_replaying_a_spent_refresh_token_revokes_the_whole_session(api: Api) -> None:
    first = api.new_user()
    second = _refresh(api, first.refresh_token)
    assert isinstance(second, Tokens)
    third = _refresh(api, second.refresh_token)
    assert isinstance(third, Tokens)
    # A thief replays the first (long spent) refresh token.
    assert _refresh(api, first.refresh_token) == 401
    # The legitimate holder's newest pair is dead too.
    assert api.get("/tasks", headers=third.headers).status_code == 401
    assert _refresh(api, third.refresh_token) == 401


def test_replay_revocation_is_an_audit_warning(start_server: StartServer) -> None:
    server = start_server(REFRESH_GRACE_SECONDS="0")
    api = Api(server.url)
    first = api.new_user()
    assert isinstance(_refresh(api, first.refresh_token), Tokens)
    assert _refresh(api, first.refresh_token) == 401
    lines = [line for line in server.logs().splitlines() if '"refresh_reuse"' in line]
    assert len(lines) == 1
    assert '"level":"warning"' in lines[0]
    assert first.refresh_token.rsplit(".", 1)[1] not in server.logs()


def test_parallel_refreshes_with_one_token_all_get_the_same_working_pair(api: Api) -> None:
    tokens = api.new_user()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: _refresh(api, tokens.refresh_token), range(8)))
    assert all(isinstance(result, Tokens) for result in results), results
    assert len({(r.access_token, r.refresh_token) for r in results}) == 1  # type: ignore[union-attr]
    pair = results[0]
    assert isinstance(pair, Tokens)
    assert api.get("/tasks", headers=pair.headers).status_code == 200
    assert isinstance(_refresh(api, pair.refresh_token), Tokens)


def test_a_retry_after_a_lost_response_gets_the_same_pair(api: Api) -> None:
    tokens = api.new_user()
    lost = _refresh(api, tokens.refresh_token)
    retried = _refresh(api, tokens.refresh_token)
    assert retried == lost
    assert isinstance(retried, Tokens)
    assert api.get("/tasks", headers=retried.headers).status_code == 200


def test_a_replay_after_the_grace_period_still_revokes_the_session(
    start_server: StartServer,
) -> None:
    api = Api(start_server(REFRESH_GRACE_SECONDS="1").url)
    first = api.new_user()
    second = _refresh(api, first.refresh_token)
    assert isinstance(second, Tokens)
    time.sleep(1.5)
    assert _refresh(api, first.refresh_token) == 401
    assert api.get("/tasks", headers=second.headers).status_code == 401
    assert _refresh(api, second.refresh_token) == 401


def test_an_older_token_within_the_grace_period_is_still_a_replay(api: Api) -> None:
    first = api.new_user()
    second = _refresh(api, first.refresh_token)
    assert isinstance(second, Tokens)
    third = _refresh(api, second.refresh_token)
    assert isinstance(third, Tokens)
    # Only the token rotated away last is forgiven; `first` is two rotations old.
    assert _refresh(api, first.refresh_token) == 401
    assert api.get("/tasks", headers=third.headers).status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "1.2",
        "1.nosuchsession.secret",
        "x.y.z",
        "1..secret",
        "\u00b2.a.b",  # "²".isdigit() is true, int("²") fails
        "\u0661.a.b",  # an Arabic-Indic digit one
        "1.a.b.c",
        "-1.a.b",
        "99999999999999999999999.a.b",
        "1.s\u00e9ssion.secret",
        "1.session.s\u00e9cret",
        "1.session." + "s" * 200,
    ],
)
def test_malformed_refresh_tokens_are_401(api: Api, token: str) -> None:
    response = api.post("/refresh", json={"refresh_token": token})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"


def test_an_empty_refresh_token_is_422(api: Api) -> None:
    assert api.post("/refresh", json={"refresh_token": ""}).status_code == 422


def test_a_guessed_secret_for_a_known_session_does_not_revoke_it(api: Api) -> None:
    tokens = api.new_user()
    user_id, session_id, _ = tokens.refresh_token.split(".")
    forged = f"{user_id}.{session_id}.{'A' * 43}"
    assert _refresh(api, forged) == 401
    assert api.get("/tasks", headers=tokens.headers).status_code == 200
    assert isinstance(_refresh(api, tokens.refresh_token), Tokens)


def test_logout_also_kills_the_refresh_token(api: Api) -> None:
    tokens = api.new_user()
    assert api.post("/logout", headers=tokens.headers).status_code == 200
    assert _refresh(api, tokens.refresh_token) == 401


def test_sessions_lists_live_sessions_and_marks_the_current_one(api: Api) -> None:
    email = api.register()
    first = api.login(email, headers={"User-Agent": "first-device/1.0"})
    second = api.login(email, headers={"User-Agent": "second-device/2.0"})
    response = api.get("/sessions", headers=second.headers)
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 2
    assert [item["user_agent"] for item in items] == ["second-device/2.0", "first-device/1.0"]
    assert [item["current"] for item in items] == [True, False]
    for item in items:
        assert set(item) == {
            "id", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "auth_methods",
            "current",
        }  # fmt: skip
        assert item["ip"] == "127.0.0.1"
        created = datetime.fromisoformat(item["created_at"])
        expires = datetime.fromisoformat(item["expires_at"])
        # Unused, a session ends at the idle timeout (1 day) before its absolute end.
        assert timedelta(hours=23) < expires - created <= timedelta(days=1, seconds=5)
    text = response.text
    for secret in (first.access_token, first.refresh_token, second.refresh_token):
        assert secret not in text
    assert first.refresh_token.rsplit(".", 1)[1] not in text


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param(
            "Mozilla/5.0 (Jürgen's) 日本".encode(), "Mozilla/5.0 (Jürgen's) 日本", id="utf-8"
        ),
        # Bytes that are no UTF-8 are replaced, never read as Latin-1 control characters.
        pytest.param(b"agent \x9b31m \x85 end", "agent \ufffd31m \ufffd end", id="c1-bytes"),
        # C1 control characters in UTF-8 (the parser refuses C0 ones): replaced too.
        pytest.param(b"agent \xc2\x9b31m \xc2\x85 end", "agent \ufffd31m \ufffd end", id="c1"),
        pytest.param(b"a" * 15_000, "a" * 512, id="15000-bytes"),
    ],
)
def test_a_user_agent_is_kept_as_utf_8_text_without_controls_and_bounded(
    api: Api, sent: bytes, stored: str
) -> None:
    email = api.register()
    tokens = api.login(email, headers={"User-Agent": sent})
    (item,) = api.get("/sessions", headers=tokens.headers).json()["items"]
    assert item["user_agent"] == stored


def test_revoking_another_session_kills_only_it(api: Api) -> None:
    email = api.register()
    keep, kill = api.login(email), api.login(email)
    kill_id = next(
        s["id"] for s in api.get("/sessions", headers=kill.headers).json()["items"] if s["current"]
    )
    response = api.delete(f"/sessions/{kill_id}", headers=keep.headers)
    assert response.status_code == 200
    assert response.json() == {"id": kill_id, "revoked": True}
    assert api.get("/tasks", headers=kill.headers).status_code == 401
    assert _refresh(api, kill.refresh_token) == 401
    assert api.get("/tasks", headers=keep.headers).status_code == 200
    assert api.delete(f"/sessions/{kill_id}", headers=keep.headers).status_code == 404


def test_another_users_session_id_is_404_and_stays_live(api: Api) -> None:
    mine, theirs = api.new_user(), api.new_user()
    their_id = api.get("/sessions", headers=theirs.headers).json()["items"][0]["id"]
    response = api.delete(f"/sessions/{their_id}", headers=mine.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found"}
    assert api.get("/tasks", headers=theirs.headers).status_code == 200


def test_logout_all_kills_every_session_of_the_user_only(api: Api) -> None:
    email = api.register()
    sessions = [api.login(email) for _ in range(3)]
    bystander = api.new_user()
    response = api.post("/logout/all", headers=sessions[0].headers)
    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    for tokens in sessions:
        assert api.get("/tasks", headers=tokens.headers).status_code == 401
        assert _refresh(api, tokens.refresh_token) == 401
    assert api.get("/tasks", headers=bystander.headers).status_code == 200


def test_a_session_says_how_it_was_made(api: Api) -> None:
    tokens = api.new_user()
    [item] = api.get("/sessions", headers=tokens.headers).json()["items"]
    assert item["auth_methods"] == ["password"]
