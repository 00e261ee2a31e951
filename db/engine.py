"""Engine and units of work. Takes plain values; knows nothing of the web layer."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text


def psycopg2_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we do not ship."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


def make_engine(url: str, *, pool_size: int = 10, connect_timeout: int = 3) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        # Drops connections broken by a database restart instead of failing a request.
        pool_pre_ping=True,
        # Each statement is its own transaction: no BEGIN and COMMIT round trips around
        # a single SELECT, INSERT ... RETURNING or UPDATE ... RETURNING.
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": connect_timeout},
    )


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
