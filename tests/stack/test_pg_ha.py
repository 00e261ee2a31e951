"""PostgreSQL as a Patroni cluster behind HAProxy (`-f docker-compose.yml -f
docker-compose.pg-ha.yml`): the leader's container is killed while a client creates tasks
through the proxy; HAProxy moves to the new leader, the api follows without a restart, no
task answered 201 is lost, and the killed node rejoins as a replica."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.stack import standin_images
from tests.stack.client import User, register_and_login
from tests.stack.compose import PG_HA_IMAGES, Stack, choose_images, docker, running_stack
from tests.stack.conftest import RUN_ID, project_name
from tests.support.live_server import ROOT

PG_HA_OVERLAY = ROOT / "docker-compose.pg-ha.yml"
NODES = ("pg-1", "pg-2", "pg-3")
PATRONICTL = ("patronictl", "-c", "/etc/patroni/patroni.yml")
MAX_WRITES = 5_000


@pytest.fixture(scope="module")
def pg_ha(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = Path(tmp_path_factory.mktemp("pg-ha"))
    patroni_image = f"tasks-patroni-stacktest:{RUN_ID}"
    env = {**stack_env, **choose_images(PG_HA_IMAGES), "PATRONI_IMAGE": patroni_image}
    if env["POSTGRES_IMAGE"] == standin_images.IMAGE_VARIABLES["POSTGRES_IMAGE"]:
        # The stand-in keeps no apt sources (standin_images.py): the Patroni build gets the
        # machine's, as a build secret, to install Python.
        sources = log_dir / "apt-sources.list"
        sources.write_text(standin_images.sources_list(standin_images.apt_sources()))
        env["APT_BUILD_SOURCES"] = str(sources)
    try:
        with running_stack(project_name("pgha"), env, log_dir, overlays=(PG_HA_OVERLAY,)) as up:
            yield up
    finally:
        docker("image", "rm", "--force", patroni_image, check=False)


def members(stack: Stack, *, besides: str = "") -> list[dict[str, Any]]:
    """The cluster as `patronictl list` shows it from the first node that answers."""
    for node in NODES:
        if node == besides:
            continue
        listed = stack.exec(node, *PATRONICTL, "list", "--format", "json")
        if listed.returncode == 0:
            return list(json.loads(listed.stdout))
    return []


def leader(stack: Stack, *, besides: str = "") -> str | None:
    found = [m["Member"] for m in members(stack, besides=besides) if m["Role"] == "Leader"]
    return found[0] if found else None


def new_leader(stack: Stack, old: str) -> str | None:
    found = leader(stack, besides=old)
    return found if found != old else None


def healthy(stack: Stack) -> bool:
    """A leader, a synchronous standby and a replica, both standbys streaming."""
    roles = sorted((m["Role"], m["State"]) for m in members(stack))
    return roles == [("Leader", "running"), ("Replica", "streaming"), ("Sync Standby", "streaming")]


def wait_for(condition: Any, *, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


class Writer:
    """Creates tasks through the proxy, about 8 a second, in turn for each of its users:
    each stays well within the stack's budget of 100 requests a minute per client."""

    def __init__(self, url: str, users: list[User]) -> None:
        self.url, self.users = url, users
        self.answers: list[tuple[float, requests.Response]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as http:
            for count in range(MAX_WRITES):
                if self.stop.wait(0.12):
                    return
                started = time.monotonic()
                response = http.post(
                    f"{self.url}/tasks", json={"title": f"write {count}"},
                    headers=self.users[count % len(self.users)].auth, timeout=60,
                )  # fmt: skip
                self.answers.append((started, response))

    def created_since(self, moment: float) -> int:
        return sum(1 for started, r in list(self.answers) if started >= moment and r.ok)


def test_a_killed_leader_loses_no_acknowledged_write_behind_haproxy(pg_ha: Stack) -> None:
    wait_for(lambda: healthy(pg_ha), seconds=120, what="three members, two streaming")
    writer = Writer(pg_ha.url, [register_and_login(pg_ha.url) for _ in range(10)])
    writer.thread.start()
    try:
        begun = time.monotonic()
        wait_for(lambda: writer.created_since(begun) >= 10, seconds=60, what="writes")
        old = leader(pg_ha)
        assert old in NODES
        killed = time.monotonic()
        pg_ha.compose("kill", old)
        # The old leader's key outlives it by up to Patroni's ttl (30 s here).
        new = wait_for(lambda: new_leader(pg_ha, old), seconds=120, what="a new leader")
        promoted = time.monotonic()
        wait_for(lambda: writer.created_since(promoted) >= 10, seconds=60, what="writes again")
        pg_ha.compose("start", old)
        wait_for(lambda: healthy(pg_ha), seconds=180, what=f"{old} to rejoin as a replica")
    finally:
        writer.stop.set()
        writer.thread.join(90)

    refused = [(started, r) for started, r in writer.answers if not r.ok]
    assert refused, "the failover was not seen"
    for _, response in refused:
        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "Database unavailable"}
        assert response.headers["Retry-After"]
    created = {r.json()["id"] for _, r in writer.answers if r.status_code == 201}
    stored = pg_ha.exec(new, "psql", "-d", "tasks", "-At", "-c", "SELECT id FROM tasks")
    assert stored.returncode == 0, stored.stderr
    assert created <= {int(line) for line in stored.stdout.split()}
    window = refused[-1][0] + refused[-1][1].elapsed.total_seconds() - refused[0][0]
    print(
        json.dumps(
            {
                "to_new_leader": round(promoted - killed, 1),
                "write_refusal_window": round(window, 1),
                "acknowledged_writes": len(created),
            }
        )
    )
    assert all(entry["State"] == "running" for entry in pg_ha.containers("api"))
