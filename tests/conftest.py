"""Test infrastructure: a throwaway PostgreSQL database (migrated with Alembic), a
dedicated Redis db index, and live uvicorn servers configured through the environment."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.api import Api
from tests.support.databases import migrate, throwaway_database
from tests.support.live_server import (
    TEST_JWT_SECRET,
    TEST_REDIS_URL,
    LiveServer,
    StartServer,
)
from tests.support.smtp_server import SmtpServer

# STACK_TESTS=skip (scripts/test.sh): the Docker stack tests are left out altogether, even
# where an engine answers (they build images and start stacks: minutes).
collect_ignore_glob = ["stack/*"] if os.environ.get("STACK_TESTS") == "skip" else []


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with throwaway_database() as url:
        migrate(url, "upgrade", "head")
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    # A dedicated db index: flushing it touches nothing else on the server.
    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        # Generous budgets: only the rate-limit tests run with small ones.
        "RATE_LIMIT": "100000/minute",
        "LOGIN_RATE_LIMIT": "100000/minute",
        "REGISTER_RATE_LIMIT": "100000/hour",
        "LOGIN_ACCOUNT_RATE_LIMIT": "100000/hour",
    }


@pytest.fixture(scope="session")
def start_server(
    base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """Start a live server with extra environment; stopped at the end of the session."""
    servers: list[LiveServer] = []

    def start(*, workers: int = 1, port: int | None = None, **env: str) -> LiveServer:
        log_path = Path(tmp_path_factory.mktemp("server")) / "server.log"
        server = LiveServer({**base_env, **env}, workers=workers, log_path=log_path, port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server: StartServer) -> LiveServer:
    return start_server()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, one inbox per test module."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(server: LiveServer) -> Api:
    return Api(server.url)
