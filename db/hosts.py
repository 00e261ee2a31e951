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
the new primary at once, not after the replicas). A host that did not answer, to a connect
or on a pooled connection, is left out for `RESTING_SECONDS` unless no other is left, then
asked last until it answers again: a frozen old primary is not waited for at every connect
while its replicas are promoted, so the connect that follows the promotion finds the new
primary at once.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg2

from db.timeouts import ServerNotAnswering

Host = tuple[str, str]  # (host, port); the port "" when the URL gives none
RESTING_SECONDS = 10.0


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
        # When each host that did not answer was last found so.
        self._silent: dict[Host, float] = {}
        # The host of each connection just made, until the pool asks (`host_of`).
        self._made: dict[int, Host] = {}

    def order(self, hosts: list[Host]) -> list[Host]:
        now = time.monotonic()
        with self._lock:
            last, silent = self._last_taken, dict(self._silent)
        resting = {host for host, at in silent.items() if now - at < RESTING_SECONDS}
        asked = [host for host in hosts if host not in resting] or hosts
        return sorted(asked, key=lambda host: (host != last, host in silent))

    def connect(self, connect: Callable[..., Any], params: dict[str, Any]) -> Any:
        """A connection to the first host that takes one; an OperationalError naming every
        host's failure, in libpq's words, and the hosts left out, when none does."""
        failures: list[str] = []
        hosts = hosts_of(params)
        asked = self.order(hosts)
        for host, port in asked:
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
                with self._lock:
                    self._made[id(connection)] = (host, port)
                return connection
        failures += [
            f'connection to server at "{host}", port {port or 5432} skipped: '
            f"no answer within the last {RESTING_SECONDS:g} s"
            for host, port in hosts
            if (host, port) not in asked
        ]
        raise psycopg2.OperationalError("\n".join(failures))

    def host_of(self, connection: Any) -> Host | None:
        """The host a connection just made by `connect` is to (asked once, by the pool)."""
        with self._lock:
            return self._made.pop(id(connection), None)

    def went_silent(self, host: Host) -> None:
        """A pooled connection to `host` got no answer: leave it out for a while."""
        self._answered(host, silent=True)

    def _answered(self, host: Host, *, silent: bool, taken: bool = False) -> None:
        with self._lock:
            if silent:
                self._silent[host] = time.monotonic()
                if self._last_taken == host:
                    self._last_taken = None
            else:
                self._silent.pop(host, None)
            if taken:
                self._last_taken = host


def _in_libpq_words(host: str, port: str, error: Exception) -> str:
    """libpq names the host in a failed blocking connect; psycopg2's non-blocking connect
    and our own bound do not."""
    message = str(error).strip()
    if message.startswith("connection to server"):
        return message
    return f'connection to server at "{host}", port {port or 5432} failed: {message}'
