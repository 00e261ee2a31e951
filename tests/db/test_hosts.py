"""A multi-host DATABASE_URL: the engine asks one host at a time, each within the connect
bound, so a host that takes connections and never answers is given up on for the next;
and it asks the host that last took a connection first."""

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from db.engine import PING_AFTER_IDLE_SECONDS, Database, make_engine
from db.hosts import RESTING_SECONDS
from tests.support.databases import ADMIN_DATABASE_URL
from tests.support.live_server import free_port
from tests.support.postgres_server import PostgresServer


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


def test_a_host_that_did_not_answer_is_left_out_for_a_while(silent_port: int) -> None:
    refusing = free_port()
    url = multi_host("postgresql+psycopg2://postgres@/postgres", refusing, silent_port)
    database = Database(make_engine(url, pool_size=1))
    try:
        with pytest.raises(OperationalError):
            database.ping()  # the silent host costs its bound once
        started = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            database.ping()
        assert time.monotonic() - started < 0.5
        assert str(raised.value.orig).splitlines()[-1] == (
            f'connection to server at "127.0.0.1", port {silent_port} skipped: '
            f"no answer within the last {RESTING_SECONDS:g} s"
        )
    finally:
        database.dispose()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.close()


def test_a_pooled_connection_to_a_host_gone_silent_moves_the_pool_to_the_next_host(
    private_postgres: PostgresServer,
) -> None:
    # Both hosts take writes; the first listed takes the pool's connection, then hangs, as
    # a frozen primary does while a worker sits idle through its failover.
    url = multi_host(ADMIN_DATABASE_URL, private_postgres.port, "own")
    database = Database(make_engine(url, pool_size=1, statement_timeout_ms=5000))

    def serving_port() -> int:
        with database.session() as db:
            return int(db.execute(text("SELECT inet_server_port()")).scalar_one())

    try:
        assert serving_port() == private_postgres.port
        time.sleep(PING_AFTER_IDLE_SECONDS)  # idle: the next checkout pings first
        private_postgres.freeze()
        # The ping waits a connect's bound (2 s), not a statement's (6 s); then the
        # checkout connects anew, asking the silent host last.
        started = time.monotonic()
        assert serving_port() == make_url(ADMIN_DATABASE_URL).port
        assert time.monotonic() - started < 4
        assert timed_ping(database) < 0.5
    finally:
        private_postgres.thaw()
        database.dispose()
