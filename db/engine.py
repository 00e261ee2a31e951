"""Engine and units of work. Takes plain values; knows nothing of the web layer."""

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

from db.timeouts import ServerNotAnswering, bound_round_trips


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
    """A pooled engine. A statement runs at most `statement_timeout_ms` (PostgreSQL cancels
    it), and no round trip waits more than a second longer than that (our side gives up,
    db.timeouts): the request thread waiting on it is one of few."""
    round_trip_seconds = statement_timeout_ms / 1000 + 1
    bound_round_trips(round_trip_seconds)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        # Each statement is its own transaction: no BEGIN and COMMIT round trips around
        # a single SELECT, INSERT ... RETURNING or UPDATE ... RETURNING.
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout_ms}",
            # A peer that vanished: unacknowledged data, or no keepalive answers.
            "tcp_user_timeout": int(round_trip_seconds * 1000),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
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
        except ServerNotAnswering:
            raise  # the server is hung: another connection would wait just as long
        except Exception as error:
            raise exc.DisconnectionError() from error


class Database:
    """The engine and its one `sessionmaker`: every read and write goes through an ORM
    `Session` from here.

    The engine runs in autocommit mode, so a unit of work of one statement (a SELECT, an
    INSERT/UPDATE/DELETE ... RETURNING) is committed when the statement returns, with no
    BEGIN and COMMIT round trips around it. Work whose statements must agree opens
    `transaction()` instead: one PostgreSQL transaction, committed before it returns."""

    def __init__(
        self, engine: Engine, *, guard: Callable[[], AbstractContextManager[None]] = nullcontext
    ) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # Runs around every unit of work (the service's circuit breaker).
        self._guard = guard

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work whose every statement stands alone: each is committed by
        PostgreSQL when it returns (autocommit), so there is nothing left to commit."""
        with self._guard(), self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work in one transaction: committed on success, rolled back on error."""
        with self._guard(), self._sessions.begin() as session:
            session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            yield session

    def ping(self) -> None:
        with self.session() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
