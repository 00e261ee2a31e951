"""Engine and units of work. Takes plain values; knows nothing of the web layer."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, text


def psycopg2_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we do not ship."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(
    url: str, *, pool_size: int = 10, connect_timeout: int = 3, statement_timeout_ms: int = 5000
) -> Engine:
    """A pooled engine. A statement runs at most `statement_timeout_ms`: the request thread
    waiting on it is one of few (the thread pool is small by design)."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        # Each statement is its own transaction: no BEGIN and COMMIT round trips around
        # a single SELECT, INSERT ... RETURNING or UPDATE ... RETURNING.
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout_ms}",
        },
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Pre-ping, but only connections that sat idle: `pool_pre_ping=True` pings on every
    checkout, a whole extra round trip per request under load. A connection broken by a
    database restart while the service was quiet is found here and replaced before the
    request uses it (the pool retries the checkout with a new one); one that breaks under
    load fails its statement, which invalidates the whole pool, so the next requests
    reconnect without a restart either way."""

    @event.listens_for(engine.pool, "checkin")
    def remember_checkin(_: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as error:
            raise exc.DisconnectionError() from error


class Database:
    """One engine; `statement()` is the unit of work. Every request runs single statements
    (INSERT/UPDATE/DELETE ... RETURNING, or a SELECT), each atomic on its own; the unique
    index on lower(email) keeps registration correct without a wider transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """A connection in autocommit mode. What a statement changed is committed when it
        returns, so the caller's response can never claim a change that was lost."""
        with self.engine.connect() as connection:
            yield connection

    def ping(self) -> None:
        with self.statement() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
