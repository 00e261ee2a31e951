"""The admin CLI, run as a subprocess against the test database and Redis."""

import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable

import pytest
import redis
from cryptography.fernet import Fernet

from sessions.store import SessionStore
from sessions.totp import derived_key
from tests.support.api import Api
from tests.support.live_server import ROOT, TEST_JWT_SECRET, StartServer, free_port
from tests.support.second_factor import enrolled, login_with

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(base_env: dict[str, str]) -> Cli:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.sessions", *args],
            cwd=ROOT,
            env={**os.environ, **base_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def _session_id(api: Api, headers: dict[str, str]) -> str:
    items = api.get("/sessions", headers=headers).json()["items"]
    return str(next(item["id"] for item in items if item["current"]))


def test_help_documents_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for text in ("list", "kill", "--user", "--json", "SESSION_ID", "mfa-reset", "mfa-reseal"):
        assert text in result.stdout


def test_list_shows_a_new_login(api: Api, cli: Cli) -> None:
    email = api.register()
    tokens = api.login(email, headers={"User-Agent": "cli-test-agent"})
    session_id = _session_id(api, tokens.headers)

    table = cli("list")
    assert table.returncode == 0, table.stderr
    assert "EMAIL" in table.stdout.splitlines()[0]
    line = next(line for line in table.stdout.splitlines() if session_id in line)
    assert email in line
    assert "cli-test-agent" in line
    assert tokens.access_token not in table.stdout

    rows = json.loads(cli("list", "--user", email.upper(), "--json").stdout)
    assert [row["id"] for row in rows] == [session_id]
    assert rows[0]["email"] == email
    assert set(rows[0]) == {
        "id", "user_id", "email", "auth_methods", "created_at", "last_seen_at", "expires_at",
        "ip", "user_agent",
    }  # fmt: skip
    assert rows[0]["auth_methods"] == "password"
    assert "AUTH_METHODS" in table.stdout.splitlines()[0]


def test_list_is_newest_first(api: Api, cli: Cli) -> None:
    email = api.register()
    older, newer = api.login(email), api.login(email)
    rows = json.loads(cli("list", "--user", email, "--json").stdout)
    assert [row["id"] for row in rows] == [
        _session_id(api, newer.headers),
        _session_id(api, older.headers),
    ]
    everyone = json.loads(cli("list", "--json").stdout)
    created = [row["created_at"] for row in everyone]
    assert created == sorted(created, reverse=True)


def test_kill_revokes_a_session_on_the_next_request(api: Api, cli: Cli) -> None:
    email = api.register()
    victim, survivor = api.login(email), api.login(email)
    result = cli("kill", _session_id(api, victim.headers))
    assert result.returncode == 0, result.stderr
    assert api.get("/tasks", headers=victim.headers).status_code == 401
    assert api.get("/tasks", headers=survivor.headers).status_code == 200
    assert '"admin_kill"' in result.stderr  # the audit event


def test_kill_exits_1_naming_ids_it_did_not_find(api: Api, cli: Cli) -> None:
    tokens = api.new_user()
    real = _session_id(api, tokens.headers)
    result = cli("kill", real, "no-such-session", "another-missing")
    assert result.returncode == 1
    assert "no-such-session" in result.stderr
    assert "another-missing" in result.stderr
    assert api.get("/tasks", headers=tokens.headers).status_code == 401


def test_kill_takes_ids_that_start_with_a_dash_after_double_dash(cli: Cli) -> None:
    result = cli("kill", "--", "-an-old-style-id")
    assert result.returncode == 1  # looked up and not found, not a usage error (2)
    assert "-an-old-style-id" in result.stderr


def test_kill_user_spares_other_users(api: Api, cli: Cli) -> None:
    email = api.register()
    sessions = [api.login(email) for _ in range(2)]
    bystander = api.new_user()
    result = cli("kill", "--user", email)
    assert result.returncode == 0, result.stderr
    assert "revoked 2" in result.stdout
    for tokens in sessions:
        assert api.get("/tasks", headers=tokens.headers).status_code == 401
    assert api.get("/tasks", headers=bystander.headers).status_code == 200


def test_unknown_user_is_an_error(cli: Cli) -> None:
    result = cli("kill", "--user", "nobody@example.com")
    assert result.returncode == 1
    assert "nobody@example.com" in result.stderr
    assert cli("kill").returncode == 2  # neither ids nor --user


def test_list_prints_control_characters_escaped(
    api: Api, cli: Cli, base_env: dict[str, str]
) -> None:
    # A session stored by an older version, which kept the User-Agent as sent.
    email = api.register()
    user_id = api.get("/me", headers=api.login(email).headers).json()["id"]
    store = SessionStore(
        redis.Redis.from_url(base_env["REDIS_URL"]),
        session_ttl_seconds=3600,
        idle_timeout_seconds=3600,
    )
    agent = "\x1b[2J\x9b31m agent\nforged line\r"
    session = store.create(
        user_id=user_id, credentials_version=1, jti="j", ip="127.0.0.1", user_agent=agent
    )
    table = cli("list", "--user", email)
    assert table.returncode == 0, table.stderr
    (line,) = [line for line in table.stdout.splitlines() if session.id in line]
    assert line.endswith("\\x1b[2J\\x9b31m agent\\x0aforged line\\x0d")
    assert not [
        char for char in table.stdout if unicodedata.category(char) == "Cc" and char != "\n"
    ]
    rows = json.loads(cli("list", "--user", email, "--json").stdout)
    assert agent in [row["user_agent"] for row in rows]  # JSON escapes them itself


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "Redis"),
        ("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:{port}/tasks", "PostgreSQL"),
    ],
)
def test_an_unreachable_dependency_is_one_line_and_a_failure(
    api: Api, cli: Cli, variable: str, value: str, named: str
) -> None:
    email = api.register()
    api.login(email)
    for args in (("list",), ("list", "--user", email), ("kill", "--user", email)):
        result = cli(*args, env={variable: value.format(port=free_port())})
        assert result.returncode == 1, result
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {named} ") and "Traceback" not in line, line


def test_mfa_reset_turns_the_factor_off_and_revokes_every_session(api: Api, cli: Cli) -> None:
    user = enrolled(api)
    done = login_with(api, user.email, user.app.code())
    assert done.status_code == 200
    rows = json.loads(cli("list", "--user", user.email, "--json").stdout)
    assert sorted(row["auth_methods"] for row in rows) == ["password", "password totp"]

    result = cli("mfa-reset", "--user", user.email)
    assert result.returncode == 0, result.stderr
    assert "turned off" in result.stdout and "revoked 2 session(s)" in result.stdout
    assert '"mfa_reset"' in result.stderr
    assert api.get("/me", headers=user.tokens.headers).status_code == 401
    # The password alone logs in again; the recovery codes are gone with the secret.
    tokens = api.login(user.email)
    assert api.get("/me", headers=tokens.headers).json()["mfa_enabled"] is False
    again = cli("mfa-reset", "--user", user.email)
    assert again.returncode == 0 and "was not on" in again.stdout
    assert cli("mfa-reset", "--user", "nobody@example.com").returncode == 1


def test_mfa_reseal_moves_every_secret_to_the_first_key(
    api: Api, cli: Cli, start_server: StartServer
) -> None:
    user = enrolled(api)  # sealed with the key derived from JWT_SECRET (no MFA_ENCRYPTION_KEY)
    old, new = derived_key(TEST_JWT_SECRET), Fernet.generate_key().decode()
    try:
        result = cli("mfa-reseal", env={"MFA_ENCRYPTION_KEY": f"{new},{old}"})
        assert result.returncode == 0, result.stderr
        assert "sealed" in result.stdout
        # A server with the new key alone opens it.
        rotated = start_server(MFA_ENCRYPTION_KEY=new)
        assert login_with(Api(rotated.url), user.email, user.app.code()).status_code == 200
        rotated.stop()
        # Without the key that sealed them, the secrets are named, not lost silently.
        lost = cli("mfa-reseal", env={"MFA_ENCRYPTION_KEY": Fernet.generate_key().decode()})
        assert lost.returncode == 1 and "no configured key opens" in lost.stderr
    finally:
        # Back under the derived key, for the other tests' servers.
        back = cli("mfa-reseal", env={"MFA_ENCRYPTION_KEY": f"{old},{new}"})
        assert back.returncode == 0, back.stderr
    # Recovery codes survive rotations: their key comes from the secret, not the seal.
    assert login_with(api, user.email, user.recovery_codes[0]).status_code == 200
