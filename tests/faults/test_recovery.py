"""Recovery in a second, and readiness that tells the truth: when Redis or PostgreSQL comes
back, every worker serves again within a second (its circuit breaker lets a trial through
after half a second, and a readiness probe may be that trial), and `/health/ready` answers
503 exactly while the worker answering it refuses requests for that dependency.

Each test waits for states (a worker named by its readiness answer), bounded by deadlines;
the recovery itself is timed, with the machine idle and with both cores kept busy."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import Api
from tests.support.live_server import LiveServer, StartServer, ready_by_worker
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.redis_topology import busy_cores, stop_all, wait_until

WORKERS = 2
RECOVERY_SECONDS = 1.0


def recovery_seconds(server: LiveServer, dependency: str, start: object, busy: bool) -> float:
    burners = busy_cores() if busy else []
    try:
        start.start()  # type: ignore[attr-defined]
        returned = time.monotonic()
        served = ready_by_worker(server, dependency, until="ok", workers=WORKERS, within=10)
    finally:
        stop_all(burners)
    return max(served.values()) - returned


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(log_path=tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "both cores busy"])
def test_every_worker_serves_within_a_second_of_redis_returning(
    start_server: StartServer, private_redis: RedisServer, busy: bool
) -> None:
    server = start_server(workers=WORKERS, REDIS_URL=private_redis.url)
    api = Api(server.url)
    email = api.register()
    private_redis.stop()
    # Every worker's breaker has opened: each says so, and refuses a login at once.
    ready_by_worker(server, "redis", until="unavailable", workers=WORKERS, within=10)
    refused = api.post("/login", json={"email": email, "password": "correct horse battery"})
    assert refused.status_code == 503
    assert refused.elapsed.total_seconds() < 1

    seconds = recovery_seconds(server, "redis", private_redis, busy)

    assert seconds <= RECOVERY_SECONDS, f"every worker ready {seconds:.2f}s after Redis returned"
    # What readiness says is what the workers do: every request is served now.
    for _ in range(2 * WORKERS):
        response = requests.post(
            f"{server.url}/login",
            json={"email": email, "password": "correct horse battery"},
            headers={"Connection": "close"},
            timeout=10,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "both cores busy"])
def test_every_worker_serves_within_a_second_of_postgresql_returning(
    start_server: StartServer, private_postgres: PostgresServer, busy: bool
) -> None:
    database_url = private_postgres.migrated_database()
    server = start_server(workers=WORKERS, DATABASE_URL=database_url)
    api = Api(server.url)
    tokens = api.new_user()
    task = api.create_task(tokens)
    private_postgres.stop()
    ready_by_worker(server, "postgresql", until="unavailable", workers=WORKERS, within=15)
    refused = api.get(f"/tasks/{task['id']}", headers=tokens.headers)
    assert refused.status_code == 503

    seconds = recovery_seconds(server, "postgresql", private_postgres, busy)

    assert seconds <= RECOVERY_SECONDS, (
        f"every worker ready {seconds:.2f}s after PostgreSQL returned"
    )
    for _ in range(2 * WORKERS):
        response = requests.get(
            f"{server.url}/tasks/{task['id']}",
            headers={**tokens.headers, "Connection": "close"},
            timeout=10,
        )
        assert response.status_code == 200, response.text


def test_readiness_is_503_exactly_while_the_worker_refuses(
    start_server: StartServer, private_redis: RedisServer
) -> None:
    server = start_server(workers=1, REDIS_URL=private_redis.url)
    api = Api(server.url)
    tokens = api.new_user()
    private_redis.stop()
    ready_by_worker_one = wait_until(
        lambda: api.get("/health/ready").status_code == 503, timeout=10, what="503"
    )
    assert ready_by_worker_one
    # While the breaker is open, readiness and requests agree on every answer.
    for _ in range(10):
        ready = api.get("/health/ready").status_code
        served = api.get("/tasks", headers=tokens.headers).status_code
        assert (ready, served) == (503, 503)
