"""second factor: TOTP secrets (sealed) and recovery codes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

One row per account that enrolled a TOTP second factor: the confirmed secret and a pending
one, both sealed with the service's key (never in the clear), when it was turned on, and
the last time step accepted (a code is accepted once). Recovery codes have a table of
their own, one row per code (an HMAC, never the code), marked when used. Both go with
their account.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "second_factors",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("pending_sealed", sa.Text(), nullable=True),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_time_step", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(secret_sealed IS NULL) = (enabled_at IS NULL)", name="ck_second_factors_enabled"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        # Also the index that finds an account's codes.
        sa.UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),
    )


def downgrade() -> None:
    op.drop_table("recovery_codes")
    op.drop_table("second_factors")
