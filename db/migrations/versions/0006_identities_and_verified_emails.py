"""identities at OpenID Connect providers, verified email addresses

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-06

`identities` links an account at a provider (its `sub`) to one of ours; `email_verified_at`
records when the address was proven; an account made by signing in with a provider has no
password, so `password_hash` may be NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# argon2id of a random password nobody kept: what a downgrade gives the accounts without a
# password (the older schema needs one), so that none of them can be signed in to with any
# password until a reset by mail sets one.
NO_PASSWORD = "$argon2id$v=19$m=19456,t=2,p=1$HisOfUdEDvzavJlbLZfw0A$lHr6GgWQBKjlfef+LI0PiowhlcT/KaHnaPXvDNWfvRg"  # noqa: E501, S105


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True)))
    op.alter_column("users", "password_hash", existing_type=sa.String(255), nullable=True)
    op.create_table(
        "identities",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column(
            "linked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
        sa.UniqueConstraint("user_id", "provider", name="uq_identities_user_provider"),
    )


def downgrade() -> None:
    op.drop_table("identities")
    op.execute(
        sa.text("UPDATE users SET password_hash = :hash WHERE password_hash IS NULL").bindparams(
            hash=NO_PASSWORD
        )
    )
    op.alter_column("users", "password_hash", existing_type=sa.String(255), nullable=False)
    op.drop_column("users", "email_verified_at")
