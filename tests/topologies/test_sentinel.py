"""The service on Redis Sentinel: a master and a replica watched by three sentinels, all
real redis-server processes on loopback. The master is killed (SIGKILL) and replaced while
the service runs; revocations wait for the replica (REDIS_WAIT_REPLICAS=1), so none is
lost with the master."""

import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import Api
from tests.support.live_server import LiveServer, StartServer, ready_by_worker
from tests.support.redis_topology import SentinelSet, wait_until

# redis-py's socket timeouts (sessions/redis_client.py): no request may wait on Redis
# longer than that, plus the time this loaded 2-core machine takes to answer at all.
REDIS_TIMEOUT_SECONDS = 1.0
SLACK_SECONDS = 1.0


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    topology = SentinelSet(Path(tmp_path_factory.mktemp("sentinel")))
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="module")
def service(start_server: StartServer, sentinels: SentinelSet) -> LiveServer:
    # A replica on this loaded 2-core machine may take longer than the default 500 ms to
    # acknowledge; the failover's own tests do not depend on that bound.
    return start_server(
        workers=2, REDIS_URL=sentinels.url, REDIS_WAIT_REPLICAS="1", REDIS_WAIT_TIMEOUT_MS="3000"
    )


def serves_reads(api: Api, headers: dict[str, str], path: str) -> float | None:
    return (
        time.monotonic() if api.get(path, headers=headers, timeout=5).status_code == 200 else None
    )


def test_every_route_works_through_the_sentinels(service: LiveServer) -> None:
    api = Api(service.url)
    tokens = api.new_user()
    task = api.create_task(tokens, title="through sentinel")
    assert api.get(f"/tasks/{task['id']}", headers=tokens.headers).status_code == 200
    refreshed = api.post("/refresh", json={"refresh_token": tokens.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert api.get("/sessions", headers=headers).status_code == 200
    assert api.post("/logout", headers=headers).status_code == 200
    assert api.get("/tasks", headers=headers).status_code == 401
    ready = api.get("/health/ready")
    assert ready.status_code == 200, ready.text


def test_a_killed_master_is_replaced_and_the_service_follows_it(
    service: LiveServer, sentinels: SentinelSet
) -> None:
    api = Api(service.url)
    tokens = api.new_user()
    task = api.create_task(tokens)
    path = f"/tasks/{task['id']}"
    answers: list[tuple[float, int, float]] = []  # started at, status, seconds
    stop = threading.Event()

    def read_continuously() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                started = time.monotonic()
                response = http.get(service.url + path, headers=tokens.headers, timeout=30)
                answers.append((started, response.status_code, time.monotonic() - started))

    readers = [threading.Thread(target=read_continuously) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        wait_until(lambda: len(answers) > 20, timeout=10, what="reads before the kill")
        old = sentinels.kill_master()
        sentinels.wait_for_failover(old)
        promoted = time.monotonic()
        ready = ready_by_worker(service, "redis", until="ok", workers=2, within=10)
        every_worker = max(ready.values())
        wait_until(
            lambda: sum(started > every_worker for started, *_ in answers) >= 20,
            timeout=10,
            what="reads after every worker is ready",
        )
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    try:
        assert every_worker - promoted <= 2.0, f"{every_worker - promoted:.2f}s after promotion"
        statuses = {status for _, status, _ in answers}
        assert statuses <= {200, 503}, statuses
        assert 503 in statuses  # the election was seen, and refused rather than waited out
        slowest = max(seconds for _, status, seconds in answers if status == 503)
        assert slowest <= REDIS_TIMEOUT_SECONDS + SLACK_SECONDS, slowest
        after = [status for started, status, _ in answers if started > every_worker]
        assert after == [200] * len(after)
    finally:
        sentinels.restart_as_replica(old)


def test_a_logout_survives_the_failover_that_follows_it(
    service: LiveServer, sentinels: SentinelSet
) -> None:
    api = Api(service.url)
    for _ in range(3):
        logged_out, kept = api.new_user(), api.new_user()
        assert api.post("/logout", headers=logged_out.headers).status_code == 200
        old = sentinels.kill_master()  # at once: the replica had to have it already
        sentinels.wait_for_failover(old)
        reading = functools.partial(serves_reads, api, kept.headers, "/tasks")
        wait_until(reading, timeout=10, what="reads again")
        assert api.get("/tasks", headers=logged_out.headers).status_code == 401
        sentinels.restart_as_replica(old)


def test_a_revocation_no_replica_confirms_is_not_claimed(
    service: LiveServer, sentinels: SentinelSet
) -> None:
    api = Api(service.url)
    tokens = api.new_user()
    replica = next(port for port in sentinels.data if port != sentinels.master_port())
    sentinels.data[replica].kill()
    try:
        refused = api.post("/logout", headers=tokens.headers)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"]
        assert "replicas" in refused.json()["detail"]
    finally:
        sentinels.restart_as_replica(replica)
    # Repeated once a replica is back, it is confirmed; the session was gone all along.
    assert api.post("/logout", headers=tokens.headers).status_code in (200, 401)
    assert api.get("/tasks", headers=tokens.headers).status_code == 401
