"""Whether the database's schema is the one this code was written for: Alembic's head.

Checked by readiness (service/health.py): a database that was never migrated, or is
behind, answers a ping like any other while every request on it fails, so a replica on it
must not get traffic. The check reads `alembic_version` once per process while it finds
the head, and again after any failure to reach the database (it may come back restored
from an older backup); in between, a plain ping.
"""

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from db.engine import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaNotCurrent(Exception):
    """The database is reachable but not at the migration head; says so in words."""


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration in {MIGRATIONS}")
    return head


class SchemaCheck:
    def __init__(self, database: Database, *, head: str | None = None) -> None:
        self._database = database
        self.head = head or head_revision()
        self._confirmed = False

    def ping(self) -> None:
        """Return when the database answers and is at the head; SchemaNotCurrent when it
        answers at another revision; the database's own error when it does not answer."""
        if self._confirmed:
            try:
                self._database.ping()
            except Exception:
                self._confirmed = False
                raise
            return
        with self._database.session() as session:
            current = MigrationContext.configure(session.connection()).get_current_heads()
        if current != (self.head,):
            found = ", ".join(current) or "none"
            raise SchemaNotCurrent(
                f"schema at revision {found}, not at the migration head {self.head}: "
                "run alembic upgrade head"
            )
        self._confirmed = True
