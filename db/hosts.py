"""Connecting through a multi-host URL (`?host=h1:5432&host=h2:5432&target_session_attrs=
read-write`), one host at a time.

libpq tries such hosts in turn and, with `connect_timeout`, gives up on one that does not
answer for the next, but only in a blocking connect. Under psycopg2's wait callback
(db.timeouts) the connect does not block, so libpq never times a host out: a host that
takes the TCP connection and then never answers (a frozen primary) would hold every
connect until our bound gives up on the whole connect, the hosts after it never asked. So
the engine asks one host at a time itself, each within the connect bound, libpq checking
`target_session_attrs` on each, as psycopg 3 does in Python for the same reason.

The order learns: the host that last took a connection is asked first (after a failover,
the new primary at once, not after the replicas), and a host that did not answer is asked
last until it answers again (a frozen host is not waited for ahead of the others).
"""

import threading
from collections.abc import Callable
from typing import Any

import psycopg2

from db.timeouts import ServerNotAnswering

Host = tuple[str, str]  # (host, port); the port "" when the URL gives none


def hosts_of(params: dict[str, Any]) -> list[Host]:
    """The hosts the connect parameters name, each with its port (libpq's rules: one port
    for every host, or one port per host)."""
    names = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if len(ports) == 1:
        ports *= len(names)
    if len(ports) != len(names):
        raise psycopg2.OperationalError(
            f"could not match {len(ports)} port numbers to {len(names)} hosts"
        )
    return list(zip(names, ports, strict=True))


class HostOrder:
    """Which host of a multi-host URL to ask first; shared by an engine's connects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_taken: Host | None = None
        self._silent: set[Host] = set()

    def order(self, hosts: list[Host]) -> list[Host]:
        with self._lock:
            last, silent = self._last_taken, set(self._silent)
        return sorted(hosts, key=lambda host: (host != last, host in silent))

    def connect(self, connect: Callable[..., Any], params: dict[str, Any]) -> Any:
        """A connection to the first host that takes one; an OperationalError naming every
        host's failure, in libpq's words, when none does."""
        failures: list[str] = []
        for host, port in self.order(hosts_of(params)):
            one = {**params, "host": host, "port": port}
            if not port:
                del one["port"]
            try:
                connection = connect(**one)
            except psycopg2.OperationalError as error:
                self._answered((host, port), silent=isinstance(error, ServerNotAnswering))
                failures.append(_in_libpq_words(host, port, error))
            else:
                self._answered((host, port), silent=False, taken=True)
                return connection
        raise psycopg2.OperationalError("\n".join(failures))

    def _answered(self, host: Host, *, silent: bool, taken: bool = False) -> None:
        with self._lock:
            if silent:
                self._silent.add(host)
                if self._last_taken == host:
                    self._last_taken = None
            else:
                self._silent.discard(host)
            if taken:
                self._last_taken = host


def _in_libpq_words(host: str, port: str, error: Exception) -> str:
    """libpq names the host in a failed blocking connect; psycopg2's non-blocking connect
    and our own bound do not."""
    message = str(error).strip()
    if message.startswith("connection to server"):
        return message
    return f'connection to server at "{host}", port {port or 5432} failed: {message}'
