"""Fault injection against real processes: Redis and PostgreSQL going away and coming
back, revocation racing live traffic on two workers, concurrent writes, and SIGTERM
while requests are in flight.

Every wait is bounded in time and in attempts; every server, redis-server and database
started here is stopped or dropped by its fixture.
"""

import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.api import PASSWORD, Api, unique_email
from tests.support.databases import ADMIN_DATABASE_URL, migrate, throwaway_database
from tests.support.live_server import LiveServer, StartServer
from tests.support.redis_server import RedisServer

# A circuit breaker asks a dependency that came back again after half a second
# (tests/faults/test_recovery.py times it); this bound only keeps a broken test finite.
RECOVERY_SECONDS = 10.0


def assert_unavailable(response: requests.Response, detail: str) -> None:
    """503 JSON with the given detail, answered fast (short timeouts, no retries)."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"detail": detail}
    assert response.elapsed.total_seconds() < 5


def assert_no_server_errors(server: LiveServer) -> None:
    """The access log shows no 5xx other than 503, and nothing went unhandled."""
    events = []
    for line in server.logs().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # uvicorn's supervisor prints a few plain lines
    unhandled = [e for e in events if e.get("event") == "unhandled_error"]
    assert not unhandled, unhandled[:3]
    failed = [
        e
        for e in events
        if e.get("event") == "request" and e.get("status", 0) >= 500 and e["status"] != 503
    ]
    assert not failed, failed[:3]


def eventually(
    send: Callable[[], requests.Response], status: int, *, within: float = RECOVERY_SECONDS
) -> requests.Response:
    """Repeat `send` until it answers `status`, for at most `within` seconds; while the
    service recovers the only other answer allowed is 503. Returns the last response."""
    deadline = time.monotonic() + within
    for _ in range(200):
        response = send()
        if response.status_code == status or time.monotonic() >= deadline:
            return response
        assert response.status_code == 503, (response.status_code, response.text)
        time.sleep(0.1)
    return response


def run_together(count: int, call: Callable[[], Any], *, timeout: float = 60) -> list[Any]:
    """Run `call` on `count` threads released at the same moment; return the results."""
    barrier = threading.Barrier(count, timeout=10)

    def at_once(_: int) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(at_once, index) for index in range(count)]
        return [future.result(timeout=timeout) for future in futures]


# Redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    redis_server = RedisServer(log_path=tmp_path / "redis.log")
    redis_server.start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def server_on_own_redis(start_server: StartServer, own_redis: RedisServer) -> Iterator[LiveServer]:
    server = start_server(REDIS_URL=own_redis.url)
    yield server
    server.stop()


def test_redis_outage_fails_closed_with_503_and_recovers_without_restart(
    server_on_own_redis: LiveServer, own_redis: RedisServer
) -> None:
    server = server_on_own_redis
    api = Api(server.url)
    email = api.register()
    tokens = api.login(email)
    api.create_task(tokens, title="written while Redis was up")

    own_redis.stop()

    for _ in range(3):  # not just the first request on each pooled connection
        assert_unavailable(api.get("/tasks", headers=tokens.headers), "Session store unavailable")
        logout = api.post("/logout", headers=tokens.headers)
        assert_unavailable(logout, "Session store unavailable")
        login = api.post("/login", json={"email": email, "password": PASSWORD})
        assert_unavailable(login, "Session store unavailable")
        assert "access_token" not in login.text
    ready = api.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"postgresql": "ok", "redis": "unavailable"}
    assert "redis" in ready.json()["detail"]

    own_redis.start()  # same port, empty: every session went with the old process

    login = eventually(lambda: api.post("/login", json={"email": email, "password": PASSWORD}), 200)
    assert login.status_code == 200, login.text
    fresh = {"Authorization": f"Bearer {login.json()['access_token']}"}
    listed = eventually(lambda: api.get("/tasks", headers=fresh), 200)
    assert listed.status_code == 200, listed.text
    assert [task["title"] for task in listed.json()["items"]] == ["written while Redis was up"]
    assert eventually(lambda: api.get("/health/ready"), 200).status_code == 200
    # The session of the old token was lost with Redis: it fails closed, it does not pass.
    stale = api.get("/tasks", headers=tokens.headers)
    assert stale.status_code == 401
    assert server.process.poll() is None, "the service must not have been restarted"
    assert_no_server_errors(server)


# PostgreSQL


@pytest.fixture
def own_database() -> Iterator[str]:
    with throwaway_database("tasks_fault") as url:
        migrate(url, "upgrade", "head")
        yield url


@pytest.fixture
def server_on_own_database(start_server: StartServer, own_database: str) -> Iterator[LiveServer]:
    server = start_server(DATABASE_URL=own_database)
    yield server
    server.stop()  # before its database is dropped


@contextmanager
def refusing_connections(url: str) -> Iterator[None]:
    """The database refuses new connections and its open ones are cut, as when
    PostgreSQL goes away; re-enabled on the way out (also before it is dropped)."""
    name = make_url(url).database
    admin = create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()


def test_postgresql_outage_answers_503_and_recovers_without_restart(
    server_on_own_database: LiveServer, own_database: str
) -> None:
    api = Api(server_on_own_database.url)
    email = api.register()
    tokens = api.login(email)
    task = api.create_task(tokens, title="written before the outage")

    with refusing_connections(own_database):
        for _ in range(3):  # not just the first request on each pooled connection
            listed = api.get("/tasks", headers=tokens.headers)
            assert_unavailable(listed, "Database unavailable")
            assert_unavailable(
                api.get(f"/tasks/{task['id']}", headers=tokens.headers), "Database unavailable"
            )
            created = api.post("/tasks", json={"title": "lost?"}, headers=tokens.headers)
            assert_unavailable(created, "Database unavailable")
            registered = api.post("/register", json={"email": unique_email(), "password": PASSWORD})
            assert_unavailable(registered, "Database unavailable")
            login = api.post("/login", json={"email": email, "password": PASSWORD})
            assert_unavailable(login, "Database unavailable")
        ready = api.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"postgresql": "unavailable", "redis": "ok"}
        assert "postgresql" in ready.json()["detail"]

    # pool_pre_ping replaces the cut connections: no restart needed, the old token still works.
    listed = eventually(lambda: api.get("/tasks", headers=tokens.headers), 200)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [task["id"]]
    created = eventually(
        lambda: api.post("/tasks", json={"title": "after"}, headers=tokens.headers), 201
    )
    assert created.status_code == 201, created.text
    api.register()
    assert eventually(lambda: api.get("/health/ready"), 200).status_code == 200
    assert server_on_own_database.process.poll() is None, "the service must not have been restarted"
    assert_no_server_errors(server_on_own_database)


def test_logins_answered_503_count_as_no_guesses(
    start_server: StartServer, own_database: str
) -> None:
    server = start_server(
        DATABASE_URL=own_database, LOGIN_RATE_LIMIT="3/minute", LOGIN_ACCOUNT_RATE_LIMIT="3/hour"
    )
    try:
        api = Api(server.url)
        email = api.register()
        with refusing_connections(own_database):
            for _ in range(5):  # more than either limit lets through
                login = api.post("/login", json={"email": email, "password": PASSWORD})
                assert_unavailable(login, "Database unavailable")
        # Nothing was checked, so nothing was counted: the owner is let in at once.
        login = eventually(
            lambda: api.post("/login", json={"email": email, "password": PASSWORD}), 200
        )
        assert login.status_code == 200, login.text
        assert login.headers["x-ratelimit-remaining"] == "2"
    finally:
        server.stop()


# Revocation racing live traffic


@pytest.fixture(scope="module")
def two_workers(start_server: StartServer) -> LiveServer:
    return start_server(workers=2)


def bytes_written_by_workers(server: LiveServer) -> dict[int, int]:
    """Bytes each uvicorn worker process has written so far (responses and log lines),
    from Linux's /proc: evidence of which workers served a burst of requests."""
    pid = server.process.pid
    written = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            io = Path(f"/proc/{child}/io").read_text().splitlines()
            counters = dict(line.split(": ") for line in io)
            written[int(child)] = int(counters["wchar"])
    return written


@dataclass(frozen=True, slots=True)
class Attempt:
    started: float
    finished: float
    status: int


def test_no_request_started_after_logout_returns_is_served_on_any_worker(
    two_workers: LiveServer,
) -> None:
    api = Api(two_workers.url)
    tokens = api.new_user()
    total, senders, logout_after = 2000, 4, 400
    attempts: list[Attempt] = []
    lock = threading.Lock()
    enough_done = threading.Event()
    # A fresh connection per request, so the requests land on both workers.
    headers = {**tokens.headers, "Connection": "close"}
    url = f"{two_workers.url}/tasks"
    written_before = bytes_written_by_workers(two_workers)
    assert len(written_before) == 2

    def send_requests(count: int) -> None:
        with requests.Session() as http:
            for _ in range(count):
                started = time.monotonic()
                status = http.get(url, headers=headers, timeout=30).status_code
                attempt = Attempt(started, time.monotonic(), status)
                with lock:
                    attempts.append(attempt)
                    if len(attempts) >= logout_after:
                        enough_done.set()

    with ThreadPoolExecutor(max_workers=senders) as pool:
        futures = [pool.submit(send_requests, total // senders) for _ in range(senders)]
        assert enough_done.wait(timeout=30), "the background requests did not get going"
        logout_sent = time.monotonic()
        logout = Api(two_workers.url).post("/logout", headers=tokens.headers)
        logged_out = time.monotonic()
        assert logout.status_code == 200, logout.text
        for future in futures:
            future.result(timeout=60)

    assert len(attempts) == total
    written = bytes_written_by_workers(two_workers)
    busy = [pid for pid in written if written[pid] - written_before[pid] > 20_000]
    assert len(busy) == 2, ("both workers must serve the race", written_before, written)
    statuses = {attempt.status for attempt in attempts}
    assert statuses <= {200, 401}, statuses
    before = [a for a in attempts if a.finished < logout_sent]
    after = [a for a in attempts if a.started > logged_out]
    assert len(before) >= logout_after
    assert len(after) >= total // 4, "too few requests raced the logout to show anything"
    assert {a.status for a in before} == {200}
    served = [a for a in after if a.status != 401]
    assert not served, (
        f"{len(served)} requests started after the logout had returned were still served;"
        f" the first started {served[0].started - logged_out:.4f} s after it"
    )
    assert_no_server_errors(two_workers)


# Concurrent writes


def test_parallel_registrations_of_one_email_create_exactly_one_account(
    two_workers: LiveServer,
) -> None:
    email = unique_email("race")

    def register() -> requests.Response:
        return requests.post(
            f"{two_workers.url}/register", json={"email": email, "password": PASSWORD}, timeout=60
        )

    responses = run_together(20, register)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19, [r.text for r in responses if r.status_code >= 500]
    (created,) = [r.json() for r in responses if r.status_code == 201]
    assert created["email"] == email
    assert all(
        r.headers["content-type"].startswith("application/json") and "detail" in r.json()
        for r in responses
        if r.status_code == 409
    )
    Api(two_workers.url).login(email)
    assert_no_server_errors(two_workers)


def test_parallel_deletes_of_one_task_delete_it_once(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    tokens = api.new_user()
    task = api.create_task(tokens)
    url = f"{two_workers.url}/tasks/{task['id']}"

    def delete() -> requests.Response:
        return requests.delete(url, headers=tokens.headers, timeout=30)

    responses = run_together(10, delete)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [404] * 9, [r.text for r in responses if r.status_code >= 500]
    (deleted,) = [r.json() for r in responses if r.status_code == 200]
    assert deleted == {"id": task["id"], "deleted": True}
    assert api.get(f"/tasks/{task['id']}", headers=tokens.headers).status_code == 404
    assert_no_server_errors(two_workers)


# Graceful shutdown


def unread_by_server(port: int) -> tuple[int, int]:
    """From Linux's /proc/net/tcp, for the listening `port`: connections the server has
    not accepted yet, and bytes that reached its accepted sockets but were not read."""
    waiting = unread = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state = int(fields[1].split(":")[1], 16), fields[3]
        received = int(fields[4].split(":")[1], 16)
        if local_port == port and state == "0A":  # LISTEN: rx_queue is the accept queue
            waiting += received
        elif local_port == port and state == "01":  # ESTABLISHED
            unread += received
    return waiting, unread


def login_on_own_connection(port: int, email: str, sent: threading.Semaphore) -> tuple[int, Any]:
    """POST /login; `sent` is released once the whole request has been written."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"email": email, "password": PASSWORD})
        connection.request("POST", "/login", body, {"Content-Type": "application/json"})
        sent.release()
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# A single uvicorn process re-raises the SIGTERM once it has drained (so its parent sees
# it end by that signal); the multi-worker supervisor exits 0.
EXIT_CODE_AFTER_SIGTERM = {1: -signal.SIGTERM, 2: 0}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_requests_in_flight_finish_then_exits(
    start_server: StartServer, workers: int
) -> None:
    # One hash at a time per process: the logins queue, so they stay in flight a while.
    server = start_server(workers=workers, PASSWORD_HASH_CONCURRENCY="1")
    email = Api(server.url).register()
    count = 32
    sent = threading.Semaphore(0)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(login_on_own_connection, server.port, email, sent) for _ in range(count)
        ]
        for _ in range(count):
            assert sent.acquire(timeout=10), "the logins were not all sent"
        # In flight means the server has them: accepted and read off the sockets. (One
        # still queued in the kernel when the listener closes is reset, by design.)
        deadline = time.monotonic() + 10
        while unread_by_server(server.port) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert unread_by_server(server.port) == (0, 0), "the server did not read the logins"
        in_flight = sum(not future.done() for future in futures)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        results = [future.result(timeout=30) for future in futures]

    assert in_flight >= count // 2, "the signal must arrive while the logins are in flight"
    assert [status for status, _ in results] == [200] * count, results
    assert all(body["token_type"] == "bearer" and body["access_token"] for _, body in results)
    exit_code = server.process.wait(timeout=15)
    assert exit_code == EXIT_CODE_AFTER_SIGTERM[workers], server.logs()
    assert time.monotonic() - signalled < 10  # within --timeout-graceful-shutdown
    assert "timeout graceful shutdown exceeded" not in server.logs()
    assert_no_server_errors(server)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
