"""Health endpoints, and failing closed when Redis or PostgreSQL does not answer."""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from tests.support.api import Api, unique_email
from tests.support.databases import migrate, throwaway_database
from tests.support.live_server import StartServer, free_port
from tests.support.redis_server import RedisServer


def test_live_answers_without_dependencies(api: Api) -> None:
    response = api.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_postgresql_and_redis_answer(api: Api) -> None:
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgresql": "ok", "redis": "ok"}


@pytest.fixture(scope="module")
def redis_down(start_server: StartServer) -> Api:
    return Api(start_server(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").url)


@pytest.fixture(scope="module")
def postgres_down(start_server: StartServer) -> Api:
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    return Api(start_server(DATABASE_URL=url).url)


def test_ready_names_redis_when_it_is_down(redis_down: Api) -> None:
    response = redis_down.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"postgresql": "ok", "redis": "unavailable"}
    assert "redis" in body["detail"]


def test_authenticated_requests_fail_closed_when_redis_is_down(api: Api, redis_down: Api) -> None:
    tokens = api.new_user()  # a valid token, issued while Redis was up
    for method, path in (("GET", "/tasks"), ("POST", "/logout"), ("GET", "/sessions")):
        response = redis_down.request(method, path, headers=tokens.headers)
        assert response.status_code == 503, (method, path)
        assert response.json() == {"detail": "Session store unavailable"}


def test_login_and_registration_fail_closed_when_redis_is_down(api: Api, redis_down: Api) -> None:
    # Their rate limits cannot be checked: never served unlimited.
    email = api.register()
    response = redis_down.post("/login", json={"email": email, "password": "correct horse battery"})
    assert response.status_code == 503
    assert "access_token" not in response.text
    response = redis_down.post(
        "/register", json={"email": unique_email(), "password": "correct horse battery"}
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"


def test_ready_names_postgresql_when_it_is_down(postgres_down: Api) -> None:
    response = postgres_down.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"postgresql": "unavailable", "redis": "ok"}
    assert "postgresql" in response.json()["detail"]


def test_register_and_tasks_answer_503_when_postgresql_is_down(
    api: Api, postgres_down: Api
) -> None:
    tokens = api.new_user()
    response = postgres_down.post(
        "/register", json={"email": "x@example.com", "password": "long enough"}
    )
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}
    response = postgres_down.get("/tasks", headers=tokens.headers)
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}


def _pings(client: redis.Redis) -> int:
    stats: dict[str, dict[str, int]] = client.info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def test_a_flood_of_readiness_probes_costs_about_one_check_a_second(
    start_server: StartServer, tmp_path: Path
) -> None:
    # Counted on a private redis-server: nothing but readiness pings it.
    private = RedisServer(log_path=tmp_path / "redis.log")
    private.start()
    try:
        server = start_server(workers=2, REDIS_URL=private.url)
        client = redis.Redis.from_url(private.url)
        for _ in range(20):  # both workers have checked once
            requests.get(f"{server.url}/health/ready", headers={"Connection": "close"}, timeout=10)
        before, started = _pings(client), time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            statuses = list(
                pool.map(
                    lambda _: requests.get(f"{server.url}/health/ready", timeout=10).status_code,
                    range(400),
                )
            )
        elapsed = time.monotonic() - started
        assert statuses == [200] * 400
        # At most one check per worker per second (and one more each as a window begins).
        assert _pings(client) - before <= 2 * (elapsed + 1) + 2
    finally:
        private.stop()


def test_ready_names_a_database_not_at_the_migration_head(start_server: StartServer) -> None:
    # Every request would be a 500 on it: not ready, and the answer says why.
    with throwaway_database() as url:
        server = start_server(DATABASE_URL=url)
        response = requests.get(f"{server.url}/health/ready", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["checks"] == {"postgresql": "unavailable", "redis": "ok"}
        assert "alembic upgrade head" in body["detail"] and "schema" in body["detail"]
        migrate(url, "upgrade", "head")
        deadline = time.monotonic() + 10
        while (ready := requests.get(f"{server.url}/health/ready", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, ready.json()
            time.sleep(0.1)
        assert ready.json()["checks"] == {"postgresql": "ok", "redis": "ok"}
        server.stop()  # before its database goes
