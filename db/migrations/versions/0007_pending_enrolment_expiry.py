"""when a pending second-factor enrolment started

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

`pending_started_at` dates the pending secret, so that an enrolment left unconfirmed
expires (MFA_ENROLMENT_TTL_SECONDS). Enrolments pending at the upgrade start their window
then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("second_factors", sa.Column("pending_started_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE second_factors SET pending_started_at = now() WHERE pending_sealed IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("second_factors", "pending_started_at")
