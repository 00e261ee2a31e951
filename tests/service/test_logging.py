"""One JSON access line per request, audit events, and no secret in any line."""

import json
import time
import unicodedata
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support.api import PASSWORD, Api, unique_email
from tests.support.databases import migrate, throwaway_database
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


@pytest.fixture(scope="module")
def refusing_database() -> Iterator[str]:
    """A migrated database with one rule more than ours, so that a write the service
    thinks valid fails inside PostgreSQL: the kind of error whose message and bound
    parameters hold what was written (an email, a password hash, a task's text)."""
    with throwaway_database() as url:
        migrate(url, "upgrade", "head")
        engine = create_engine(url)
        with engine.begin() as connection:
            for rule in (
                "ALTER TABLE users ADD CONSTRAINT no_refused CHECK (email NOT LIKE 'refused%')",
                "ALTER TABLE tasks ADD CONSTRAINT no_refused CHECK (title <> 'refused')",
            ):
                connection.execute(text(rule))
        engine.dispose()
        yield url


def test_a_database_error_s_traceback_holds_no_value_of_the_request(
    start_server: StartServer, refusing_database: str
) -> None:
    server = start_server(DATABASE_URL=refusing_database)
    api = Api(server.url)
    email = "refused-" + unique_email()
    response = api.post("/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 500, response.text
    request_id = response.json()["request_id"]
    tokens = api.new_user()
    description = "the plans nobody else may read"
    task = api.post(
        "/tasks", json={"title": "refused", "description": description}, headers=tokens.headers
    )
    assert task.status_code == 500, task.text

    errors = [line for line in _lines(server) if line.get("event") == "unhandled_error"]
    assert len(errors) == 2
    assert errors[0]["request_id"] == request_id
    # The traceback is there, and says which statement and which rule failed.
    assert "IntegrityError" in str(errors[0]["exception"])
    assert "no_refused" in str(errors[0]["exception"])
    raw = server.logs()
    for value in (email, email.split("@")[0], PASSWORD, "$argon2id$", description):
        assert value not in raw, value


def test_console_logs_escape_control_characters_from_the_request(
    start_server: StartServer,
) -> None:
    server = start_server(LOG_FORMAT="console")
    # Percent-escapes decode into the path: a colour, a bell and a forged second line.
    response = requests.get(f"{server.url}/nowhere/%1b%5b31mred%07%0afake%c2%9b", timeout=10)
    assert response.status_code == 404
    # The access line is written once the answer is sent: it may come a moment later.
    deadline = time.monotonic() + 5
    while "\\x1b[31mred\\x07\\x0afake\\x9b" not in (logs := server.logs()):
        assert time.monotonic() < deadline, logs
        time.sleep(0.02)
    # No control character but the line ends reaches the terminal (nor the colours that
    # structlog adds for a terminal: the log here is a file).
    controls = {char for char in logs if unicodedata.category(char) == "Cc"} - {"\n"}
    assert not controls, controls


def test_json_logs_escape_every_control_character(logged_server: LiveServer) -> None:
    # JSON must escape C0 controls; C1 ones (U+0080-U+009F: CSI among them) it may write
    # as they are, and a terminal showing the log could act on them.
    response = requests.get(f"{logged_server.url}/nowhere/c1-%c2%9b31m-%1b", timeout=10)
    assert response.status_code == 404
    deadline = time.monotonic() + 5
    while not (lines := [line for line in _lines(logged_server) if "c1-" in str(line.get("path"))]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert lines[0]["path"] == "/nowhere/c1-\x9b31m-\x1b"  # the same text, once decoded
    controls = {c for c in logged_server.logs() if unicodedata.category(c) == "Cc"} - {"\n"}
    assert not controls, controls
