"""Alembic environment: migrates DATABASE_URL under a PostgreSQL advisory lock, so
several replicas starting at once run the migrations one after another."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text

from db.models import Base
from db.settings import DatabaseSettings

# An arbitrary constant shared by every process that migrates this database.
MIGRATION_LOCK_ID = 7_340_524_913

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    # The service's own database settings: DATABASE_URL from the environment or `.env`.
    return DatabaseSettings().database_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=Base.metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
