"""task versions (ETags), trigram search and the other sort orders

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`version` is raised by every write of a task; the ETag is made from it, so two writes in
the same microsecond still give two ETags, and a conditional write compares it in the
UPDATE's own WHERE. pg_trgm's GIN indexes serve the case-insensitive substring search on
title and description (ILIKE), the two btree indexes the other sort orders.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tasks", sa.Column("version", sa.BigInteger(), server_default="1", nullable=False)
    )
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_tasks_title_trgm",
        "tasks",
        ["title"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_tasks_description_trgm",
        "tasks",
        ["description"],
        postgresql_using="gin",
        postgresql_ops={"description": "gin_trgm_ops"},
    )
    op.create_index("ix_tasks_owner_updated", "tasks", ["owner_id", "updated_at", "id"])
    op.create_index("ix_tasks_owner_title", "tasks", ["owner_id", "title", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_title", table_name="tasks")
    op.drop_index("ix_tasks_owner_updated", table_name="tasks")
    op.drop_index("ix_tasks_description_trgm", table_name="tasks")
    op.drop_index("ix_tasks_title_trgm", table_name="tasks")
    # The extension stays: other objects of the database may use it, and it holds no data.
    op.drop_column("tasks", "version")
