"""A client-side bound on every PostgreSQL round trip.

`statement_timeout` is enforced by the server; a server that accepts connections and
never answers (stopped, frozen, cut off behind a live TCP stack) needs a bound on our side
too. psycopg2's wait callback lets libpq run without blocking: this one waits at most the
bound for each step of a connect, query or commit, then cuts the connection off and
raises, and SQLAlchemy discards that connection from its pool.

A connect has a bound of its own, usually shorter: libpq's `connect_timeout` is enforced
only by a blocking connect, which a wait callback replaces, and a host that does not take
a connection quickly is better given up on for the next one (db.hosts).
"""

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from contextvars import ContextVar

import psycopg2
import psycopg2.extensions as psycopg2_ext

_bound_seconds: float | None = None
_connect_bound_seconds: float | None = None
# A tighter bound for the round trips of one block (`bounded`).
_block_bound_seconds: ContextVar[float | None] = ContextVar("block_bound", default=None)


class ServerNotAnswering(psycopg2.OperationalError):  # type: ignore[misc]
    """A round trip that got no answer within the bound (the connection is cut off)."""


def bound_round_trips(seconds: float, *, connect_seconds: float | None = None) -> None:
    """Give every psycopg2 connection of this process at most `seconds` per round trip, and
    `connect_seconds` (default: `seconds`) per step of a connect. The largest bound asked
    for wins: each is one setting per process."""
    global _bound_seconds, _connect_bound_seconds
    _bound_seconds = max(seconds, _bound_seconds or 0)
    _connect_bound_seconds = max(connect_seconds or seconds, _connect_bound_seconds or 0)
    psycopg2_ext.set_wait_callback(_wait)


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Round trips in the block wait at most `seconds`: a ping needs no statement's time."""
    token = _block_bound_seconds.set(seconds)
    try:
        yield
    finally:
        _block_bound_seconds.reset(token)


def _cut_off(connection: psycopg2_ext.connection) -> None:
    """End the connection at the socket: libpq's own close would try to say goodbye to the
    server that does not answer, and wait. What libpq does with it next fails at once, and
    SQLAlchemy discards it."""
    with contextlib.suppress(OSError):
        # A second descriptor for the same socket: shutdown() acts on the socket itself.
        duplicate = socket.fromfd(connection.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        duplicate.shutdown(socket.SHUT_RDWR)
        duplicate.close()


def _wait(connection: psycopg2_ext.connection) -> None:
    assert _bound_seconds is not None and _connect_bound_seconds is not None
    connecting = connection.status == psycopg2_ext.STATUS_SETUP
    bound = _connect_bound_seconds if connecting else _block_bound_seconds.get() or _bound_seconds
    deadline = time.monotonic() + bound
    while True:
        state = connection.poll()
        if state == psycopg2_ext.POLL_OK:
            return
        left = deadline - time.monotonic()
        descriptor = [connection.fileno()]
        if left > 0 and state == psycopg2_ext.POLL_READ:
            ready = select.select(descriptor, [], [], left)[0]
        elif left > 0 and state == psycopg2_ext.POLL_WRITE:
            ready = select.select([], descriptor, [], left)[1]
        elif left > 0:
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        else:
            ready = []
        if not ready:
            _cut_off(connection)
            step = "connect to" if connecting else "receive data from"
            raise ServerNotAnswering(f"could not {step} server: no answer within {bound:g} s")
