"""Alembic migrates a fresh database up and all the way back down."""

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect

from tests.conftest import migrate
from tests.support.databases import throwaway_database


@pytest.fixture
def empty_database() -> Iterator[str]:
    with throwaway_database("tasks_migrations") as url:
        yield url


def test_upgrade_creates_the_schema_and_downgrade_removes_it(empty_database: str) -> None:
    migrate(empty_database, "upgrade", "head")
    engine = create_engine(empty_database)
    try:
        inspector = inspect(engine)
        assert {"users", "tasks"} <= set(inspector.get_table_names())
        indexes = {index["name"] for index in inspector.get_indexes("tasks")}
        assert "ix_tasks_owner_created" in indexes
        user_indexes = {i["name"]: i for i in inspector.get_indexes("users")}
        assert user_indexes["uq_users_email_lower"]["unique"]

        migrate(empty_database, "downgrade", "base")
        inspector = inspect(engine)
        assert not {"users", "tasks"} & set(inspector.get_table_names())

        migrate(empty_database, "upgrade", "head")
        assert {"users", "tasks"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(empty_database: str) -> None:
    migrate(empty_database, "upgrade", "head")
    result = migrate(empty_database, "check")
    assert "No new upgrade operations detected" in result.stdout + result.stderr
