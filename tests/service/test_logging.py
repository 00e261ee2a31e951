"""One JSON access line per request, audit events, and no secret in any line."""

import json

import pytest

from tests.support.api import PASSWORD, Api
from tests.support.live_server import LiveServer, StartServer


@pytest.fixture(scope="module")
def logged_server(start_server: StartServer) -> LiveServer:
    return start_server()


def _lines(server: LiveServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.logs().splitlines() if line.strip()]


def test_logs_are_json_with_access_lines_and_audit_events_but_no_secrets(
    logged_server: LiveServer,
) -> None:
    api = Api(logged_server.url)
    email = api.register()
    api.post("/login", json={"email": email, "password": "a wrong password"})
    tokens = api.login(email)
    api.get("/tasks", headers={**tokens.headers, "X-Request-ID": "trace-me"})
    refreshed = api.post("/refresh", json={"refresh_token": tokens.refresh_token}).json()
    new_access = refreshed["access_token"]
    assert api.post("/logout", headers={"Authorization": f"Bearer {new_access}"}).ok

    raw = logged_server.logs()
    lines = _lines(logged_server)  # every line parses as JSON

    access = [line for line in lines if line.get("event") == "request"]
    traced = next(line for line in access if line["request_id"] == "trace-me")
    assert traced["method"] == "GET"
    assert traced["path"] == "/tasks"
    assert traced["status"] == 200
    assert isinstance(traced["duration_ms"], float)
    assert isinstance(traced["user_id"], int)
    assert traced["session_id"]
    assert "timestamp" in traced

    events = {line["event"] for line in lines}
    assert {"user_registered", "login_failed", "session_created", "session_revoked"} <= events
    failure = next(line for line in lines if line["event"] == "login_failed")
    assert failure["level"] == "warning"
    assert failure["request_id"]

    secrets = (PASSWORD, "a wrong password", tokens.access_token, tokens.refresh_token, new_access)
    for secret in secrets:
        assert secret not in raw
    # Not even the signature part of the token, or the refresh secret alone.
    assert tokens.access_token.split(".")[2] not in raw
    assert tokens.refresh_token.split(".")[2] not in raw
