"""A multi-host DATABASE_URL: the engine asks one host at a time, each within the connect
bound, so a host that takes connections and never answers is given up on for the next;
and it asks the host that last took a connection first."""

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from db.engine import Database, make_engine
from tests.support.live_server import free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel's backlog) and never answers,
    as a frozen server does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def multi_host(url: str, *ports: int | str) -> str:
    """The database of `url`, reached through a multi-host URL: each of `ports` on
    127.0.0.1 (an int), or the URL's own server (its name, a str)."""
    parsed = make_url(url)
    own = f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}"
    hosts = [own if port == "own" else f"127.0.0.1:{port}" for port in ports]
    return (
        parsed.set(host=None, port=None, query={})
        .update_query_pairs([("host", host) for host in hosts])
        .update_query_dict({"target_session_attrs": "read-write"})
        .render_as_string(hide_password=False)
    )


def timed_ping(database: Database) -> float:
    started = time.monotonic()
    database.ping()
    return time.monotonic() - started


def test_a_host_that_never_answers_is_given_up_on_for_the_next(
    database_url: str, silent_port: int
) -> None:
    database = Database(make_engine(multi_host(database_url, silent_port, "own"), pool_size=1))
    try:
        first = timed_ping(database)
        assert 2 <= first < 4, first  # the silent host's bound (2 s), then the next host
        database.engine.dispose()
        # The host that took the connection is asked first from now on.
        assert timed_ping(database) < 0.5
    finally:
        database.dispose()


def test_a_host_that_refuses_is_passed_over_at_once(database_url: str) -> None:
    refusing = free_port()
    database = Database(make_engine(multi_host(database_url, refusing, "own"), pool_size=1))
    try:
        assert timed_ping(database) < 0.5
    finally:
        database.dispose()


def test_when_no_host_takes_a_connection_every_one_is_named(silent_port: int) -> None:
    refusing = free_port()
    url = multi_host("postgresql+psycopg2://postgres@/postgres", refusing, silent_port)
    database = Database(make_engine(url, pool_size=1))
    try:
        with pytest.raises(OperationalError) as raised:
            database.ping()
        failures = [
            line for line in str(raised.value.orig).splitlines() if not line.startswith("\t")
        ]
        assert failures == [
            f'connection to server at "127.0.0.1", port {refusing} failed: Connection refused',
            f'connection to server at "127.0.0.1", port {silent_port} failed: '
            "could not connect to server: no answer within 2 s",
        ]
    finally:
        database.dispose()
