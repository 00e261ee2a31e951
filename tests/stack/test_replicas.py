"""Three api replicas behind the proxy (`docker compose up --build --scale api=3`), started
together on empty volumes."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.stack.client import check_response, register_and_login, status_in_replica
from tests.stack.compose import Stack, running_stack
from tests.stack.conftest import project_name

REPLICAS = 3


@pytest.fixture(scope="module")
def replicas(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    log_dir = Path(tmp_path_factory.mktemp("replicas"))
    with running_stack(
        project_name("replicas"),
        # One worker each: three replicas of the default two would crowd two cores.
        {**stack_env, "WEB_CONCURRENCY": "1"},
        log_dir,
        up_args=("--build", "--scale", f"api={REPLICAS}"),
        replicas=REPLICAS,
    ) as running:
        yield running


def test_exactly_one_replica_runs_the_migration(replicas: Stack) -> None:
    logs = [stdout for stdout, _ in replicas.streams("api")]
    assert len(logs) == REPLICAS
    # Each replica reached the migration step and found the schema up to date; the
    # advisory lock in db/migrations/env.py let only the first one migrate.
    assert all('"migration_finished"' in log for log in logs)
    assert sum("Running upgrade" in log for log in logs) == 1


def proxied_upstreams(replicas: Stack) -> set[str]:
    ((access_log, _),) = replicas.streams("proxy")
    return {
        line.split('"upstream":"')[1].split('"')[0]
        for line in access_log.splitlines()
        if '"/health/ready"' in line
    }


def test_the_proxy_balances_over_every_replica(replicas: Stack) -> None:
    # The proxy keeps the name's addresses for 5 s (`resolver ... valid=5s`): one it read
    # while a replica was still joining the network names two. Waited for, not raced.
    deadline = time.monotonic() + 30
    while True:
        for _ in range(12):
            check_response(requests.get(f"{replicas.url}/health/ready", timeout=10), 200)
        upstreams = proxied_upstreams(replicas)
        if len(upstreams) == REPLICAS or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(upstreams) == REPLICAS, upstreams


def test_a_logout_through_one_replica_is_refused_by_every_replica(replicas: Stack) -> None:
    user = register_and_login(replicas.url)
    token = user.access_token
    replica_numbers = range(1, REPLICAS + 1)
    assert [status_in_replica(replicas, n, "GET", "/tasks", token) for n in replica_numbers] == [
        200
    ] * REPLICAS

    assert status_in_replica(replicas, 2, "POST", "/logout", token) == 200

    assert [status_in_replica(replicas, n, "GET", "/tasks", token) for n in replica_numbers] == [
        401
    ] * REPLICAS
    check_response(requests.get(f"{replicas.url}/tasks", headers=user.auth, timeout=10), 401)
