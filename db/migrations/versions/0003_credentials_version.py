"""credentials version per account

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Raised by every password change and reset, and read with the password hash at login, so
that a login which verified the old password just before a change starts no session after
it (the session store keeps the latest version per user).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("credentials_version", sa.BigInteger(), server_default="1", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("users", "credentials_version")
