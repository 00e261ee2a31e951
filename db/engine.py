"""Engine and units of work. Takes plain values; knows nothing of the web layer."""

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

from db.hosts import HostOrder, hosts_of
from db.timeouts import ServerNotAnswering, bound_round_trips, bounded


def psycopg2_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we do not ship."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0

# SQLSTATEs that say the server is no primary to write to any more, so the connection is
# useless whatever the statement: read_only_sql_transaction (a demoted primary, a standby),
# admin_shutdown and crash_shutdown (a server stopped or restarted under it, as an HA
# manager does when it demotes one), cannot_connect_now (starting up, or in recovery).
NOT_A_PRIMARY = frozenset({"25006", "57P01", "57P02", "57P03"})


def make_engine(
    url: str, *, pool_size: int = 10, connect_timeout: int = 2, statement_timeout_ms: int = 5000
) -> Engine:
    """A pooled engine. A statement runs at most `statement_timeout_ms` (PostgreSQL cancels
    it), and no round trip waits more than a second longer than that (our side gives up,
    db.timeouts): the request thread waiting on it is one of few. A connect waits at most
    `connect_timeout` for each host (db.hosts, for a URL that names several)."""
    round_trip_seconds = statement_timeout_ms / 1000 + 1
    bound_round_trips(round_trip_seconds, connect_seconds=connect_timeout)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        # A traceback or log line never carries a statement's values (an email, a title).
        hide_parameters=True,
        # Each statement is its own transaction: no BEGIN and COMMIT round trips around
        # a single SELECT, INSERT ... RETURNING or UPDATE ... RETURNING.
        isolation_level="AUTOCOMMIT",
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
    order = HostOrder()
    _connect_one_host_at_a_time(engine, order)
    _ping_idle_connections(engine, order, ping_seconds=connect_timeout)
    _discard_connections_to_a_non_primary(engine, order)
    return engine


def _connect_one_host_at_a_time(engine: Engine, order: HostOrder) -> None:
    @event.listens_for(engine, "do_connect")
    def connect(dialect: Any, _: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        if cargs or len(hosts_of(cparams)) < 2:
            return None  # one host: libpq's own connect
        return order.connect(dialect.loaded_dbapi.connect, cparams)

    @event.listens_for(engine.pool, "connect")
    def remember_host(dbapi_connection: Any, record: Any) -> None:
        record.info["host"] = order.host_of(dbapi_connection)


def _ping_idle_connections(engine: Engine, order: HostOrder, *, ping_seconds: float) -> None:
    """Pre-ping, but only connections that sat idle: `pool_pre_ping=True` pings on every
    checkout, a whole extra round trip per request under load. A connection broken by a
    database restart while the service was quiet is found here and replaced before the
    request uses it (the pool retries the checkout with a new one); one that breaks under
    load fails its statement, which invalidates the whole pool, so the next requests
    reconnect without a restart either way. The ping waits no longer than a connect would:
    a worker that sat idle through a failover finds the old primary hung in seconds, not
    after a statement's time."""

    @event.listens_for(engine.pool, "checkin")
    def remember_checkin(_: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.pool, "connect")
    def fresh(_: Any, record: Any) -> None:
        record.info.pop("checked_in_at", None)  # a record reconnected needs no ping

    @event.listens_for(engine.pool, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with bounded(ping_seconds), dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except ServerNotAnswering as error:
            # The server is hung, and so is every other pooled connection to it: each would
            # cost its own wait. All are discarded, and the checkout connects anew: to
            # another host of a multi-host URL (this one is asked last), or fails within the
            # connect bound.
            if (host := record.info.get("host")) is not None:
                order.went_silent(host)
            raise exc.InvalidatePoolError() from error
        except Exception as error:
            raise exc.DisconnectionError() from error


def _discard_connections_to_a_non_primary(engine: Engine, order: HostOrder) -> None:
    """A failover leaves pooled connections to a server that is no primary any more; a ping
    would not tell (a demoted server still answers `SELECT 1`), the first write does. Such
    an error is taken as a disconnect: SQLAlchemy invalidates that connection and every
    other of the pool, and the next checkout connects anew, to the new primary. A server
    that stopped answering is asked last by the next connects."""

    @event.listens_for(engine, "handle_error")
    def not_a_primary(context: Any) -> None:
        error = context.original_exception
        if getattr(error, "pgcode", None) in NOT_A_PRIMARY:
            context.is_disconnect = True
        if isinstance(error, ServerNotAnswering) and context.connection is not None:
            with contextlib.suppress(AttributeError, exc.SQLAlchemyError):
                host = context.connection.connection.info.get("host")
                if host is not None:
                    order.went_silent(host)


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
