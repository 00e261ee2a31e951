"""Settings come from the environment and are checked at start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from pydantic import ValidationError

from service.config import EXAMPLE_JWT_SECRET, Settings
from tests.support.live_server import ROOT, LiveServer, StartServer, free_port

STRONG_SECRET = "s" * 48
SEALING_KEY = Fernet.generate_key().decode()


@pytest.mark.parametrize("secret", [EXAMPLE_JWT_SECRET, "too-short", ""])
def test_production_refuses_a_weak_or_example_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(app_env="production", jwt_secret=secret)


def test_production_accepts_a_strong_secret() -> None:
    settings = Settings(
        app_env="production", jwt_secret=STRONG_SECRET, mfa_encryption_key=SEALING_KEY
    )
    assert settings.jwt_secret.get_secret_value() == STRONG_SECRET


def test_production_needs_a_key_for_the_second_factor_s_secrets() -> None:
    with pytest.raises(ValidationError, match="MFA_ENCRYPTION_KEY must be set in production"):
        Settings(app_env="production", jwt_secret=STRONG_SECRET)


def test_elsewhere_the_sealing_key_is_derived_from_the_jwt_secret() -> None:
    derived = Settings(jwt_secret=STRONG_SECRET).mfa_keys
    assert derived == Settings(jwt_secret=STRONG_SECRET).mfa_keys
    assert derived != Settings(jwt_secret="t" * 48).mfa_keys
    assert Settings(mfa_encryption_key=SEALING_KEY).mfa_keys == [SEALING_KEY]


def test_sealing_keys_are_a_list_the_first_of_which_seals() -> None:
    second = Fernet.generate_key().decode()
    settings = Settings(mfa_encryption_key=f" {SEALING_KEY} , {second} ")
    assert settings.mfa_keys == [SEALING_KEY, second]


def test_an_empty_sealing_key_is_no_key() -> None:
    assert Settings(mfa_encryption_key="").mfa_keys == Settings().mfa_keys
    with pytest.raises(ValidationError, match="MFA_ENCRYPTION_KEY must be set"):
        Settings(app_env="production", jwt_secret=STRONG_SECRET, mfa_encryption_key="")


@pytest.mark.parametrize("keys", ["not-a-key", " , ", f"{'A' * 43}=,x", "c2hvcnQ="])
def test_a_malformed_sealing_key_is_refused_and_never_echoed(keys: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(mfa_encryption_key=keys)
    assert "MFA_ENCRYPTION_KEY is a comma-separated list of Fernet keys" in str(refused.value)
    for key in keys.split(","):
        assert not key.strip() or key.strip() not in str(refused.value)


def test_bare_postgresql_urls_are_given_the_psycopg2_driver() -> None:
    settings = Settings(database_url="postgresql://u@h:5432/d")
    assert settings.database_url == "postgresql+psycopg2://u@h:5432/d"


def test_the_database_pool_has_a_connection_for_every_thread() -> None:
    settings = Settings(thread_pool_size=6, password_hash_concurrency=3)
    # Request threads, two per hash slot, the health checks' thread and the mail outbox's.
    assert settings.database_pool_size == 6 + 2 * 3 + 2
    assert Settings(thread_pool_size=6, db_pool_size=20).database_pool_size == 20
    with pytest.raises(ValidationError, match="DB_POOL_SIZE"):
        Settings(thread_pool_size=6, password_hash_concurrency=3, db_pool_size=13)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "60")
    monkeypatch.setenv("LOG_FORMAT", "console")
    settings = Settings()
    assert settings.access_token_ttl_seconds == 60
    assert settings.log_format == "console"


def test_the_service_refuses_to_start_in_production_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    env["APP_ENV"] = "production"
    result = subprocess.run(
        [sys.executable, "-c", "from service.main import app"],
        cwd=tmp_path,  # away from any .env in the repository root
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_a_refused_secret_is_never_echoed(tmp_path: Path) -> None:
    secret = "short-but-secret-value"
    env = {**os.environ, "APP_ENV": "production", "JWT_SECRET": secret, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", "from service.main import app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "JWT_SECRET must be at least 32 bytes" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_development_with_the_example_secret_says_so(start_server: StartServer) -> None:
    server = start_server(APP_ENV="development", JWT_SECRET=EXAMPLE_JWT_SECRET)
    lines = server.logs().splitlines()
    # Loudly: the first line the server logs, as an error, and in /health/ready's body.
    assert '"example_jwt_secret"' in lines[0] and '"level":"error"' in lines[0], lines[:3]
    assert sum('"example_jwt_secret"' in line for line in lines) == 1
    assert EXAMPLE_JWT_SECRET not in server.logs()
    ready = requests.get(f"{server.url}/health/ready", timeout=10)
    assert ready.status_code == 200
    assert "JWT_SECRET is the public example value" in ready.json()["warning"]


def test_a_server_with_its_own_secret_has_no_warning(server: LiveServer) -> None:
    assert '"example_jwt_secret"' not in server.logs()
    ready = requests.get(f"{server.url}/health/ready", timeout=10)
    assert ready.status_code == 200 and "warning" not in ready.json()


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/reset?token={token}&x={0}",
        "https://app.example.com/reset?token={}",
        "https://app.example.com/reset?token={token}&user={user}",
        "https://app.example.com/reset?token={token!r}",
        "https://app.example.com/reset?token={token:>80}",
        "https://app.example.com/reset?token={token",
        "https://app.example.com/reset}?token={token}",
    ],
)
def test_a_reset_url_with_anything_but_the_token_field_is_refused(url: str) -> None:
    # Formatted for every mail: a field it cannot fill would fail each mail, not the start.
    with pytest.raises(ValidationError, match="PASSWORD_RESET_URL"):
        Settings(password_reset_url=url)


def test_a_reset_url_may_hold_literal_braces() -> None:
    url = "https://app.example.com/reset/{{v2}}?token={token}"
    assert Settings(password_reset_url=url).password_reset_url == url


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PASSWORD_RESET_URL", "https://app.example.com/reset?t={token}&{0}", "{token}"),
        ("DATABASE_URL", "postgresql+psycopg2://postgres:pw@127.0.0.1:54x2/tasks", "port"),
        ("DATABASE_URL", "postgresql+psycopg2://postgres:pw@127.0.0.1:99999/tasks", "port"),
        ("DATABASE_URL", "127.0.0.1:5432", "postgresql+psycopg2://"),
        ("THREAD_POOL_SIZE", "many", "integer"),
    ],
)
def test_a_bad_setting_stops_uvicorn_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "service.main:app", "--port", str(free_port())],
        cwd=tmp_path,  # away from any .env in the repository root
        env={**os.environ, "PYTHONPATH": str(ROOT), variable: value},
        capture_output=True,
        text=True,
        timeout=20,  # refused before it serves: a server that starts is the failure
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if variable in line]
    assert line.startswith("error: invalid settings:") and words in line, line
    assert len(result.stderr.splitlines()) <= 2, result.stderr
    assert "pw@" not in result.stderr  # the URL's password, never shown


def test_the_verification_link_needs_a_token_slot() -> None:
    with pytest.raises(ValidationError, match="EMAIL_VERIFICATION_URL must contain"):
        Settings(email_verification_url="https://app.example.com/verify")
    url = "https://app.example.com/verify?token={token}"
    assert Settings(email_verification_url=url).email_verification_url == url


CORP = {
    "OIDC_CORP_ISSUER": "https://login.example.com/",
    "OIDC_CORP_CLIENT_ID": "tasks",
    "OIDC_CORP_CLIENT_SECRET": "a-secret-value",
}


def test_a_provider_is_read_from_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CORP.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        oidc_providers="corp",
        public_base_url="https://api.example.com/",
        oidc_return_url="https://app.example.com/signed-in",
    )
    (corp,) = settings.oidc_provider_settings
    assert (corp.name, corp.issuer, corp.client_id) == (
        "corp",
        "https://login.example.com",
        "tasks",
    )
    assert corp.client_secret.get_secret_value() == "a-secret-value"
    assert corp.scopes == "openid email profile"
    assert settings.public_base_url == "https://api.example.com"


@pytest.mark.parametrize(
    ("missing", "problem"),
    [
        ("OIDC_CORP_CLIENT_SECRET", "OIDC_CORP_CLIENT_SECRET must be set"),
        ("OIDC_CORP_ISSUER", "OIDC_CORP_ISSUER must be"),
        ("PUBLIC_BASE_URL", "PUBLIC_BASE_URL must be set"),
    ],
)
def test_an_incomplete_provider_stops_the_start_naming_the_variable(
    missing: str, problem: str
) -> None:
    variables = {k: v for k, v in CORP.items() if k != missing}
    settings: dict[str, str] = {
        "public_base_url": "https://api.example.com",
        "oidc_return_url": "https://app.example.com/",
    }
    settings.pop(missing.lower(), None)
    with pytest.raises(ValidationError, match=problem) as refused:
        Settings(oidc_providers="corp", oidc_provider_variables=variables, **settings)  # type: ignore[arg-type]
    assert "a-secret-value" not in str(refused.value)


def test_production_wants_an_https_issuer() -> None:
    variables = {**CORP, "OIDC_CORP_ISSUER": "http://login.example.com"}
    with pytest.raises(ValidationError, match="https:// URL in production"):
        Settings(
            app_env="production",
            jwt_secret=STRONG_SECRET,
            oidc_providers="corp",
            oidc_provider_variables=variables,
            public_base_url="https://api.example.com",
            oidc_return_url="https://app.example.com/",
        )
