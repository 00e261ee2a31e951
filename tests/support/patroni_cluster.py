"""A real PostgreSQL cluster under Patroni on loopback, for the tests: one etcd (Debian's
`etcd-server`) and three PostgreSQL 15 nodes, each a Patroni process (from
deploy/patroni/patroni.lock, in .venv-tools/patroni) with its own data directory and free
ports, in synchronous mode with pg_rewind, as deploy/patroni/patroni.yml runs them.

The tests kill a node (SIGKILL of its Patroni and its postmaster: a machine lost) or freeze
it (SIGSTOP of every process of the node: a machine hung), then start or thaw it again.
Every wait is for a state (a leader, replicas streaming, a synchronous standby), bounded by
a deadline, never a fixed sleep.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests
import yaml

from tests.support.live_server import ROOT, free_port
from tests.support.postgres_server import postgres_bin_dir
from tests.support.tool_venv import tool_venv

PATRONI_LOCK = ROOT / "deploy" / "patroni" / "patroni.lock"
# Published as source archives only (deploy/patroni/patroni.in).
SOURCE_ONLY = ("python-etcd", "ydiff")
# Patroni runs as the postgres user, who may not reach this checkout (under /root, say) nor
# the interpreter running the tests (pyenv's, say): its venv is the machine's Python 3 in a
# directory every user can read.
PATRONI_TOOLS_DIR = Path(tempfile.gettempdir()) / "tasks-service-tools"
MACHINE_PYTHON = "/usr/bin/python3"
SCOPE = "tasks-test"
# Patroni's timing: the leader key lives `ttl` seconds unless renewed, `loop_wait` between
# checks. Shorter than deploy/patroni/patroni.yml's (Patroni's defaults, 30 and 10) so that
# a round of the tests costs less than a minute: 20 s is the shortest ttl Patroni accepts
# (it raises a shorter one to 20), and loop_wait + 2 * retry_timeout may not exceed it.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 2, 5


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """`condition()`'s first truthy value; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, requests.RequestException, psycopg2.Error) as error:
            last_error = error
        else:
            if value:
                return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} ({last_error!r})")


def required_tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is not None:
        return found
    problem = f"{name} is not installed (Debian package: {package})"
    if os.environ.get("STACK_TESTS") == "required":
        pytest.fail(f"STACK_TESTS=required, but {problem}")
    pytest.skip(problem)


def _as_postgres() -> dict[str, Any]:
    # PostgreSQL refuses to run as root, and Patroni runs it as its own user.
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _children(pids: set[int]) -> set[int]:
    """`pids` and every process descending from them."""
    found, grew = set(pids), True
    while grew:
        grew = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in found:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent in found:
                    found.add(int(entry.name))
                    grew = True
    return found


class Etcd:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port, self.peer_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.port}"
        log = open(self.directory / "etcd.log", "ab")  # noqa: SIM115 (the process's)
        self.process = subprocess.Popen(
            [required_tool("etcd", "etcd-server"), "--name", "etcd", "--data-dir",
             str(self.directory / "etcd"), "--listen-client-urls", client,
             "--advertise-client-urls", client, "--listen-peer-urls", peer,
             "--initial-advertise-peer-urls", peer, "--initial-cluster", f"etcd={peer}"],
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        wait_until(self._healthy, timeout=30, what="etcd to answer")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError((self.directory / "etcd.log").read_text()[-3000:])
        answer = requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1)
        return bool(answer.ok and answer.json().get("health") == "true")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@dataclass
class Member:
    """A node as Patroni's /cluster names it."""

    name: str
    role: str  # "leader", "sync_standby", "replica"
    state: str  # "running", "streaming", ...


class Node:
    """One Patroni process and the PostgreSQL it runs."""

    def __init__(self, directory: Path, name: str, etcd: Etcd, patroni: Path) -> None:
        self.name, self.directory, self.patroni = name, directory / name, patroni
        self.port, self.rest_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen: set[int] = set()
        self.directory.mkdir()
        (self.directory / "patroni.yml").write_text(yaml.safe_dump(self._config(etcd)))
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")

    def _config(self, etcd: Etcd) -> dict[str, Any]:
        # The same settings as deploy/patroni/patroni.yml, on loopback ports of their own.
        shipped = yaml.safe_load((ROOT / "deploy" / "patroni" / "patroni.yml").read_text())
        dcs = shipped["bootstrap"]["dcs"]
        dcs.update(ttl=TTL, loop_wait=LOOP_WAIT, retry_timeout=RETRY_TIMEOUT)
        # No disk flushes: a test kills processes, never the machine.
        dcs["postgresql"]["parameters"]["fsync"] = "off"
        local = f"127.0.0.1:{self.port}"
        return {
            "scope": SCOPE,
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"127.0.0.1:{self.rest_port}",
                "connect_address": f"127.0.0.1:{self.rest_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{etcd.port}"]},
            "bootstrap": {"dcs": dcs, "initdb": shipped["bootstrap"]["initdb"]},
            "postgresql": {
                "listen": local,
                "connect_address": local,
                "data_dir": str(self.directory / "data"),
                "bin_dir": postgres_bin_dir(),
                "pgpass": str(self.directory / "pgpass"),
                "basebackup": shipped["postgresql"]["basebackup"],
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "replicator"},
                },
                # Loopback only, and trusted: no passwords to keep in a test.
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication replicator 127.0.0.1/32 trust",
                ],
                "parameters": {"unix_socket_directories": str(self.directory)},
            },
        }

    def start(self) -> None:
        log = open(self.directory / "patroni.log", "ab")  # noqa: SIM115 (the process's)
        self.process = subprocess.Popen(
            [str(self.patroni / "bin" / "patroni"), str(self.directory / "patroni.yml")],
            stdout=log, stderr=log, cwd=self.directory, start_new_session=True,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, **_as_postgres(),
        )  # fmt: skip
        log.close()

    def postmaster(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
            return pid
        return None

    def _processes(self) -> set[int]:
        """Patroni, the postmaster (Patroni starts it detached) and all their children."""
        roots = {pid for pid in (self.postmaster(),) if pid is not None}
        if self.process is not None and self.process.poll() is None:
            roots.add(self.process.pid)
        return _children(roots)

    def kill(self) -> None:
        """SIGKILL of Patroni and the postmaster, at once: the node is gone without a word.
        The backends notice their postmaster's death and exit by themselves."""
        postmaster = self.postmaster()
        assert self.process is not None
        self.process.kill()
        if postmaster is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)
        self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP of every process of the node: it keeps its sockets, and never answers."""
        self.frozen = self._processes()
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = set()

    def stop(self) -> None:
        self.thaw()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # Patroni stops its PostgreSQL first
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def connect(self, dbname: str = "postgres") -> Any:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, connect_timeout=1
        )

    def query(self, sql: str, *parameters: Any, database: str = "postgres") -> list[Any]:
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def in_recovery(self) -> bool:
        return bool(self.query("SELECT pg_is_in_recovery()")[0][0])

    def members(self) -> list[Member]:
        answer = requests.get(f"http://127.0.0.1:{self.rest_port}/cluster", timeout=1)
        answer.raise_for_status()
        return [
            Member(member["name"], member["role"], member.get("state", ""))
            for member in answer.json()["members"]
        ]

    def logs(self) -> str:
        return (self.directory / "patroni.log").read_text(errors="replace")[-4000:]


class PatroniCluster:
    def __init__(self, size: int = 3) -> None:
        required_tool("etcd", "etcd-server")
        patroni = tool_venv(
            "patroni",
            PATRONI_LOCK,
            from_source=SOURCE_ONLY,
            python=MACHINE_PYTHON,
            directory=PATRONI_TOOLS_DIR,
        )
        # Not under pytest's tmp_path: the postgres user must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="tasks-test-patroni-"))
        self.directory.chmod(0o755)
        self.etcd = Etcd(self.directory)
        self.nodes = [Node(self.directory, f"node-{i}", self.etcd, patroni) for i in range(size)]

    def node(self, name: str) -> Node:
        (found,) = [node for node in self.nodes if node.name == name]
        return found

    def url(self, database: str, *, last: Node | None = None) -> str:
        """A DATABASE_URL naming every node (`last` last), the primary chosen by libpq."""
        nodes = sorted(self.nodes, key=lambda node: node is last)
        hosts = "&".join(f"host=127.0.0.1:{node.port}" for node in nodes)
        return f"postgresql+psycopg2://postgres@/{database}?{hosts}&target_session_attrs=read-write"

    def start(self) -> None:
        self.etcd.start()
        for node in self.nodes:
            node.start()
        self.wait_until_healthy()

    def members(self, *, besides: Node | None = None) -> list[Member]:
        """The members as the first node that answers names them."""
        for node in self.nodes:
            if node is besides or node.frozen:
                continue
            with contextlib.suppress(requests.RequestException):
                return node.members()
        return []

    def leader(self) -> Node | None:
        leaders = [member.name for member in self.members() if member.role == "leader"]
        return self.node(leaders[0]) if leaders else None

    def healthy(self) -> Node | None:
        """The leader, once it is the only node that takes writes, Patroni names it, and every
        other node streams from it, one of them its synchronous standby (a write
        acknowledged from now on survives the leader's loss). Asked of PostgreSQL itself:
        Patroni's own view of a node that just woke up can be a loop behind."""
        if any(node.frozen for node in self.nodes):
            return None
        primaries = [node for node in self.nodes if not node.in_recovery()]
        members = self.members()
        named = [member.name for member in members if member.role == "leader"]
        if len(primaries) != 1 or named != [primaries[0].name]:
            return None
        (leader,) = primaries
        replication = leader.query(
            "SELECT application_name, state, sync_state FROM pg_stat_replication"
        )
        standbys = {name: (state, sync) for name, state, sync in replication}
        others = {node.name for node in self.nodes if node is not leader}
        streaming = {name for name, (state, _) in standbys.items() if state == "streaming"}
        synchronous = [name for name, (_, sync) in standbys.items() if sync == "sync"]
        # Patroni promotes only the standby its own record names synchronous: until that
        # record agrees with PostgreSQL, losing the leader would promote no one.
        recorded = [member.name for member in members if member.role == "sync_standby"]
        if streaming != others or len(synchronous) != 1 or synchronous != recorded:
            return None
        return leader

    def wait_until_healthy(self, timeout: float = 120) -> Node:
        try:
            leader: Node = wait_until(self.healthy, timeout=timeout, what="a healthy cluster")
        except AssertionError as error:
            logs = "\n".join(f"--- {node.name}\n{node.logs()}" for node in self.nodes)
            raise AssertionError(f"{error}\n{self.members()}\n{logs}") from None
        return leader

    def wait_for_new_primary(self, old: Node, timeout: float = 60) -> Node:
        """The first other node to take writes (asked directly, every 50 ms)."""

        def promoted() -> Node | None:
            for node in self.nodes:
                if node is not old:
                    with contextlib.suppress(psycopg2.Error):
                        if not node.in_recovery():
                            return node
            return None

        found: Node = wait_until(promoted, timeout=timeout, what="a replica to be promoted")
        return found

    def create_database(self, name: str) -> None:
        leader = self.leader()
        assert leader is not None
        with contextlib.closing(leader.connect()) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.etcd.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[PatroniCluster]:
    cluster = PatroniCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
