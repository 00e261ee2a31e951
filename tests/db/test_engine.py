"""The engine the service runs on: bounded statements, idle connections checked."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db.engine import Database, make_engine


def test_a_statement_longer_than_the_timeout_is_cancelled(database_url: str) -> None:
    database = Database(make_engine(database_url, pool_size=1, statement_timeout_ms=200))
    try:
        with database.session() as db:
            assert db.execute(text("SELECT pg_sleep(0.05)")).scalar_one() is not None
        with (
            pytest.raises(OperationalError, match="statement timeout"),
            database.session() as db,
        ):
            db.execute(text("SELECT pg_sleep(2)"))
        database.ping()  # the connection is still usable afterwards
    finally:
        database.dispose()
