"""The engine the service runs on: bounded statements, idle connections checked."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

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


def test_a_pooled_connection_to_a_server_gone_read_only_is_discarded(database_url: str) -> None:
    # What a demoted primary looks like to a connection that outlived the failover.
    database = Database(make_engine(database_url, pool_size=1))
    try:
        with database.session() as db:
            db.execute(text("SET default_transaction_read_only = on"))
        with pytest.raises(DBAPIError) as refused, database.session() as db:
            db.execute(text("CREATE TABLE written_on_a_standby ()"))
        assert refused.value.connection_invalidated  # answered 503, never 500
        assert getattr(refused.value.orig, "pgcode", None) == "25006"
        with database.session() as db:
            assert db.execute(text("SHOW default_transaction_read_only")).scalar_one() == "off"
    finally:
        database.dispose()


def test_statement_values_never_reach_an_error_message(database_url: str) -> None:
    database = Database(make_engine(database_url, pool_size=1))
    try:
        with pytest.raises(DBAPIError) as refused, database.session() as db:
            db.execute(text("SELECT 1 / 0 WHERE :value <> ''"), {"value": "secret-value"})
        assert "secret-value" not in str(refused.value)
        assert "parameters hidden" in str(refused.value)
    finally:
        database.dispose()
