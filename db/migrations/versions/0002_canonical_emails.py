"""one canonical email per account

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Accounts were unique by PostgreSQL's lower(email) while rate limits were keyed by
Python's str.lower(), which disagree (for example on "İ"). Both now use one canonical
form, computed in Python and stored in users.email_canonical under a unique constraint.
Two existing accounts whose emails share a canonical form cannot both keep it: the
upgrade stops and names them, and nothing changes until an operator resolves them.
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def canonical_email(email: str) -> str:
    # Frozen copy of db.emails.canonical_email as of this revision: a migration must keep
    # meaning what it meant when it was written.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email.strip()).casefold())


def upgrade() -> None:
    op.add_column("users", sa.Column("email_canonical", sa.String(320), nullable=True))
    connection = op.get_bind()
    users = connection.execute(sa.text("SELECT id, email FROM users ORDER BY id")).all()
    owners: dict[str, list[int]] = {}
    for user_id, email in users:
        owners.setdefault(canonical_email(email), []).append(user_id)
    clashes = {email: ids for email, ids in owners.items() if len(ids) > 1}
    if clashes:
        listed = "; ".join(f"{email}: users {ids}" for email, ids in sorted(clashes.items()))
        raise RuntimeError(
            f"accounts whose emails are the same address once canonicalised: {listed}. "
            "Change or delete all but one of each, then run the upgrade again."
        )
    for canonical, (user_id,) in owners.items():
        connection.execute(
            sa.text("UPDATE users SET email_canonical = :canonical WHERE id = :id"),
            {"canonical": canonical, "id": user_id},
        )
    op.alter_column("users", "email_canonical", nullable=False)
    op.drop_index("uq_users_email_lower", table_name="users")
    op.create_unique_constraint("uq_users_email_canonical", "users", ["email_canonical"])


def downgrade() -> None:
    op.drop_constraint("uq_users_email_canonical", "users", type_="unique")
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.drop_column("users", "email_canonical")
