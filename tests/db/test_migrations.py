"""Alembic migrates a fresh database up and all the way back down."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support.databases import migrate, throwaway_database
from tests.support.live_server import ROOT


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
        unique = {c["name"]: c["column_names"] for c in inspector.get_unique_constraints("users")}
        assert unique["uq_users_email_canonical"] == ["email_canonical"]

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


def _insert_users(url: str, emails: list[str]) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for email in emails:
            connection.execute(
                text("INSERT INTO users (email, password_hash) VALUES (:email, 'x')"),
                {"email": email},
            )
    engine.dispose()


FULLWIDTH_BOB = "\uff42\uff4f\uff42@example.com"


def test_existing_accounts_get_their_canonical_email(empty_database: str) -> None:
    migrate(empty_database, "upgrade", "0001")
    _insert_users(empty_database, ["Alice@Example.COM", "Straße@example.com", FULLWIDTH_BOB])
    migrate(empty_database, "upgrade", "head")
    engine = create_engine(empty_database)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT email, email_canonical FROM users ORDER BY id"))
        assert [tuple(row) for row in rows] == [
            ("Alice@Example.COM", "alice@example.com"),
            ("Straße@example.com", "strasse@example.com"),
            (FULLWIDTH_BOB, "bob@example.com"),
        ]
    engine.dispose()


def test_accounts_that_become_one_address_stop_the_migration(empty_database: str) -> None:
    migrate(empty_database, "upgrade", "0001")
    # lower() told these apart; their canonical forms are the same address.
    _insert_users(empty_database, ["strasse@example.com", "Straße@example.com"])
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": empty_database},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "strasse@example.com: users [1, 2]" in result.stderr
    # Nothing changed: the upgrade ran in one transaction.
    engine = create_engine(empty_database)
    assert "email_canonical" not in {c["name"] for c in inspect(engine).get_columns("users")}
    engine.dispose()


def test_alembic_reads_the_services_settings_from_dot_env(
    empty_database: str, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={empty_database}\n")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(empty_database)
    assert {"users", "tasks"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_0005_adds_the_second_factor_tables_and_its_downgrade_removes_them(
    empty_database: str,
) -> None:
    migrate(empty_database, "upgrade", "0001")
    _insert_users(empty_database, ["ada@example.com"])
    migrate(empty_database, "upgrade", "0005")
    engine = create_engine(empty_database)
    try:
        inspector = inspect(engine)
        assert {"second_factors", "recovery_codes"} <= set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("second_factors")}
        assert columns == {
            "user_id", "secret_sealed", "pending_sealed", "enabled_at", "last_time_step",
        }  # fmt: skip
        with engine.begin() as connection:
            # On exactly with a secret; both go with the account.
            connection.execute(
                text(
                    "INSERT INTO second_factors (user_id, secret_sealed, enabled_at) "
                    "SELECT id, 'sealed', now() FROM users"
                )
            )
            connection.execute(
                text("INSERT INTO recovery_codes (user_id, code_hash) SELECT id, 'h' FROM users")
            )
            connection.execute(text("DELETE FROM users"))
            left = connection.execute(text("SELECT count(*) FROM recovery_codes")).scalar_one()
            assert left == 0
        migrate(empty_database, "downgrade", "0004")
        inspector = inspect(engine)
        assert not {"second_factors", "recovery_codes"} & set(inspector.get_table_names())
        assert {"users", "tasks"} <= set(inspector.get_table_names())
    finally:
        engine.dispose()


def test_identities_and_verified_emails_migrate_up_and_back(empty_database: str) -> None:
    migrate(empty_database, "upgrade", "0006")
    engine = create_engine(empty_database)
    try:
        inspector = inspect(engine)
        unique = {
            c["name"]: c["column_names"] for c in inspector.get_unique_constraints("identities")
        }
        assert unique == {
            "uq_identities_provider_subject": ["provider", "subject"],
            "uq_identities_user_provider": ["user_id", "provider"],
        }
        columns = {c["name"]: c for c in inspector.get_columns("users")}
        assert columns["password_hash"]["nullable"] and columns["email_verified_at"]["nullable"]
        with engine.begin() as connection:
            # An account made by a provider: no password, its address vouched for.
            user_id = connection.execute(
                text(
                    "INSERT INTO users (email, email_canonical, password_hash, email_verified_at)"
                    " VALUES ('oidc@example.com', 'oidc@example.com', NULL, now()) RETURNING id"
                )
            ).scalar_one()
            connection.execute(
                text("INSERT INTO identities (provider, subject, user_id) VALUES ('idp', 's', :u)"),
                {"u": user_id},
            )

        # Back to the revision before: the account stays, with a password nobody knows.
        migrate(empty_database, "downgrade", "0005")
        inspector = inspect(engine)
        assert "identities" not in inspector.get_table_names()
        columns = {c["name"]: c for c in inspector.get_columns("users")}
        assert "email_verified_at" not in columns and not columns["password_hash"]["nullable"]
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT password_hash FROM users WHERE id = :u"), {"u": user_id}
            ).scalar_one()
        assert stored.startswith("$argon2id$")

        migrate(empty_database, "upgrade", "head")
        assert "identities" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_0007_dates_pending_enrolments_and_its_downgrade_drops_the_date(
    empty_database: str,
) -> None:
    migrate(empty_database, "upgrade", "0006")
    engine = create_engine(empty_database)
    try:
        with engine.begin() as connection:
            for email in ("pending@example.com", "on@example.com"):
                connection.execute(
                    text(
                        "INSERT INTO users (email, email_canonical, password_hash) "
                        "VALUES (:email, :email, 'x')"
                    ),
                    {"email": email},
                )
            connection.execute(
                text(
                    "INSERT INTO second_factors (user_id, pending_sealed) "
                    "SELECT id, 'sealed' FROM users WHERE email = 'pending@example.com'"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO second_factors (user_id, secret_sealed, enabled_at) "
                    "SELECT id, 'sealed', now() FROM users WHERE email = 'on@example.com'"
                )
            )
        migrate(empty_database, "upgrade", "0007")
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT u.email, f.pending_started_at IS NOT NULL FROM second_factors f "
                    "JOIN users u ON u.id = f.user_id ORDER BY u.email"
                )
            ).all()
        # The pending enrolment starts its window at the upgrade; the factor that is on has none.
        assert [tuple(row) for row in rows] == [
            ("on@example.com", False),
            ("pending@example.com", True),
        ]
        migrate(empty_database, "downgrade", "0006")
        columns = {c["name"] for c in inspect(engine).get_columns("second_factors")}
        assert "pending_started_at" not in columns and "pending_sealed" in columns
    finally:
        engine.dispose()
