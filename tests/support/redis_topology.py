"""Real Redis topologies on loopback, for the tests: a master with a replica watched by
three sentinels, and a six-node cluster (three masters, three replicas). Every process is
a `redis-server` of the machine's own, started here on free ports in a directory of the
test's, and stopped (SIGKILL where the test plays a crash) by the fixture that made it.

Every wait is for a state (a master named by the sentinels, a replica in sync, a cluster
whose every slot is served), bounded by a deadline, never a fixed sleep."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from tests.support.redis_server import REDIS_SERVER

SERVICE = "tasks"
REDIS_CLI = REDIS_SERVER.replace("redis-server", "redis-cli")


def _free_port(*, with_bus: bool = False) -> int:
    """A loopback port that is free, and (for a cluster node) its bus port +10000 too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535 and with_bus:
            continue
        if not with_bus:
            return port
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_until(
    condition: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05
) -> Any:
    """`condition()`'s first truthy value; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (redis.RedisError, OSError) as error:
            last_error = error
        else:
            if value:
                return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} ({last_error!r})")


class Node:
    """One redis-server process (a master, a replica, a sentinel or a cluster node)."""

    def __init__(self, directory: Path, name: str, port: int, arguments: list[str]) -> None:
        self.directory = directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name, self.port, self.arguments = name, port, arguments
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.directory / "log", "ab")  # noqa: SIM115 (the process writes to it)
        self.process = subprocess.Popen(
            [REDIS_SERVER, *self.arguments], cwd=self.directory, stdout=log, stderr=log
        )
        log.close()
        wait_until(self._answers, timeout=10, what=f"{self.name} to answer on {self.port}")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.logs()}")
        with self.client() as client:
            return bool(client.ping())

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def kill(self) -> None:
        """SIGKILL: a crash, with nothing flushed or said to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        path = self.directory / "log"
        return path.read_text(errors="replace") if path.exists() else ""


def _data_node(directory: Path, name: str, port: int, *extra: str) -> Node:
    arguments = [
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--logfile", "", *extra,
    ]  # fmt: skip
    return Node(directory, name, port, arguments)


class SentinelSet:
    """A master and a replica of service `tasks`, and three sentinels (quorum 2) that
    declare the master down after 1 s without an answer and then promote the replica."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        master_port, replica_port = _free_port(), _free_port()
        self.data = {
            master_port: _data_node(directory, f"redis-{master_port}", master_port),
            replica_port: _data_node(
                directory,
                f"redis-{replica_port}",
                replica_port,
                "--replicaof",
                "127.0.0.1",
                str(master_port),
            ),
        }
        self.sentinels = [self._sentinel(_free_port(), master_port) for _ in range(3)]

    def _sentinel(self, port: int, master_port: int) -> Node:
        directory = self.directory / f"sentinel-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        # Sentinel rewrites its configuration file as it learns: it must be its own.
        (directory / "sentinel.conf").write_text(
            f'port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile ""\n'
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return Node(self.directory, f"sentinel-{port}", port, ["sentinel.conf", "--sentinel"])

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        for node in self.data.values():
            node.start()
        for sentinel in self.sentinels:
            sentinel.start()
        master = self.master_port()
        wait_until(
            lambda: self.replicas_in_sync(master) >= 1, timeout=20, what="the replica in sync"
        )
        # Every sentinel knows the replica and the others before anything is killed.
        wait_until(self._sentinels_agree, timeout=20, what="the sentinels to see each other")

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(SERVICE)
                if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                    return False
        return True

    def master_port(self) -> int:
        """The master's port, as the sentinels name it now."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError), sentinel.client() as client:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
                if address:
                    return int(address[1])
        raise AssertionError("no sentinel names a master")

    def replicas_in_sync(self, master_port: int) -> int:
        """Replicas of the master that are online and acknowledged its stream within the
        last second (its offset moves all the time: the sentinels publish on it)."""
        with self.data[master_port].client() as client:
            info = client.info("replication")
        return sum(
            1
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict)
            and value.get("state") == "online" and int(value.get("lag", 99)) <= 1
        )  # fmt: skip

    def kill_master(self) -> int:
        """SIGKILL the master; its port."""
        port = self.master_port()
        self.data[port].kill()
        return port

    def wait_for_failover(self, old_port: int, timeout: float = 30) -> int:
        """The new master's port, once every sentinel names it and it takes writes."""

        def promoted() -> int | None:
            ports = set()
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    address = client.sentinel_get_master_addr_by_name(SERVICE)
                ports.add(int(address[1]) if address else None)
            if len(ports) != 1 or old_port in ports or None in ports:
                return None
            port = ports.pop()
            if port is None:
                return None
            with self.data[port].client() as client:
                role = client.role()
            return port if role and role[0] == b"master" else None

        port: int = wait_until(promoted, timeout=timeout, what="the sentinels to promote a replica")
        return port

    def restart_as_replica(self, port: int) -> None:
        """Start a crashed master again: the sentinels make it a replica of the new one."""
        node = self.data[port]
        node.start()

        def rejoined() -> bool:
            with node.client() as client:
                info = client.info("replication")
            return (
                info.get("role") == "slave"
                and info.get("master_link_status") == "up"
                and self.replicas_in_sync(self.master_port()) >= 1
            )

        # The sentinels reconfigure it once they see it back: 5-16 s measured here.
        wait_until(rejoined, timeout=90, what=f"redis-{port} to rejoin as a replica")

    def stop(self) -> None:
        for node in [*self.sentinels, *self.data.values()]:
            node.stop()


class Cluster:
    """Six cluster nodes joined by `redis-cli --cluster create --cluster-replicas 1`: three
    masters, each with a replica that takes over 1 s after its master stops answering."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [
            _data_node(
                directory,
                f"cluster-{port}",
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "1000",
                # A replica may take over however long it was cut off (a test's restart).
                "--cluster-replica-validity-factor",
                "0",
            )
            for port in (_free_port(with_bus=True) for _ in range(6))
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_until_served()

    def wait_until_served(self, timeout: float = 30) -> None:
        """Every live node says the cluster is ok: every slot has a master that answers."""

        def served() -> bool:
            for node in self.live_nodes():
                with node.client() as client:
                    info = client.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info:
                        return False
            return True

        wait_until(served, timeout=timeout, what="the cluster to serve every slot")

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def master_of(self, key: str) -> Node:
        """The live node that serves `key`'s slot now."""
        node = self.live_nodes()[0]
        client = RedisCluster(host="127.0.0.1", port=node.port, socket_timeout=1)
        try:
            port = int(client.get_node_from_key(key).port)  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def busy_cores(count: int | None = None) -> list[subprocess.Popen[bytes]]:
    """Processes that keep the machine's cores busy (stop them with `stop_all`)."""
    count = count or os.cpu_count() or 2
    return [subprocess.Popen(["python3", "-c", "while True: pass"]) for _ in range(count)]


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.kill()
        process.wait()
