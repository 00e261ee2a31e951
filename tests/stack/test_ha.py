"""Redis with a replica and three sentinels (`-f docker-compose.yml -f docker-compose.ha.yml`):
the primary is killed with `docker compose kill`, a logout made before holds after the
failover, and the api follows the new master without a restart."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.stack.client import check_response, login, register_and_login
from tests.stack.compose import Stack, running_stack, wait_for_status
from tests.stack.conftest import project_name
from tests.support.live_server import ROOT

HA_OVERLAY = ROOT / "docker-compose.ha.yml"


@pytest.fixture(scope="module")
def ha(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = Path(tmp_path_factory.mktemp("ha"))
    with running_stack(project_name("ha"), stack_env, log_dir, overlays=(HA_OVERLAY,)) as running:
        yield running


def master_name(stack: Stack) -> str:
    """The master's name, as a sentinel gives it (`sentinel announce-hostnames yes`)."""
    answer = stack.exec(
        "sentinel-1", "redis-cli", "-p", "26379", "sentinel", "get-master-addr-by-name", "tasks"
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout.split()[0] if answer.stdout.split() else ""


def wait_for_master(stack: Stack, name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while (current := master_name(stack)) != name:
        assert time.monotonic() < deadline, f"the sentinels still name {current!r}, not {name!r}"
        time.sleep(0.5)


def test_a_logout_holds_across_a_failover_and_the_api_follows_the_new_master(ha: Stack) -> None:
    assert master_name(ha) == "redis"
    logged_out, reader = register_and_login(ha.url), register_and_login(ha.url)
    check_response(requests.post(f"{ha.url}/logout", headers=logged_out.auth, timeout=30), 200)

    ha.compose("kill", "redis")
    wait_for_master(ha, "redis-replica")

    # Reads are served by the new master, through the same api containers.
    wait_for_status(f"{ha.url}/tasks", 200, headers=reader.auth, seconds=30)
    # The logout was on the replica before it was answered: it holds.
    check_response(requests.get(f"{ha.url}/tasks", headers=logged_out.auth, timeout=30), 401)
    api_containers = ha.containers("api")
    assert all(entry["State"] == "running" for entry in api_containers)

    # Until a replica is back, a login (which waits for one) is not confirmed: 503.
    refused = requests.post(
        f"{ha.url}/login", json={"email": reader.email, "password": reader.password}, timeout=30
    )
    assert check_response(refused, 503)["detail"].endswith("on its replicas; retry")
    # The old primary comes back as a replica of the new master; logins work again.
    ha.compose("start", "redis")
    deadline = time.monotonic() + 60
    while "state=online" not in replication(ha, "redis-replica"):
        assert time.monotonic() < deadline, replication(ha, "redis-replica")
        time.sleep(1)
    login(ha.url, reader)
    assert master_name(ha) == "redis-replica"


def replication(stack: Stack, service: str) -> str:
    answer = stack.exec(service, "redis-cli", "info", "replication")
    return answer.stdout.replace("\r", "")
