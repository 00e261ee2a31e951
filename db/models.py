"""ORM models: the schema Alembic migrates and the repositories query."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.emails import MAX_CANONICAL_LENGTH

TASK_STATUSES = ("todo", "in_progress", "done")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email_canonical", name="uq_users_email_canonical"),)
    # Server defaults (created_at) come back in the INSERT's RETURNING, not a later SELECT.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # As the user typed it (after email-validator's normalisation): shown and mailed to.
    email: Mapped[str] = mapped_column(String(320))
    # db.emails.canonical_email(email): what makes two addresses the same account.
    email_canonical: Mapped[str] = mapped_column(String(MAX_CANONICAL_LENGTH))
    # None for an account made by signing in with an OpenID Connect provider: no password
    # matches it (a login verifies against a dummy hash) until a reset by mail sets one.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Raised by every password change or reset: a login that verified an older password
    # starts no session (sessions.store compares it with Redis's copy).
    credentials_version: Mapped[int] = mapped_column(BigInteger, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When a mail sent to the address proved it reaches the account's owner (a verification
    # link, or a reset by mail), or the provider that created the account vouched for it.
    email_verified_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class OidcIdentity(Base):
    """An account at an OpenID Connect provider (its `sub`), linked to one of ours: signing
    in there signs in here. One per provider and account; never linked by email alone."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
        UniqueConstraint("user_id", "provider", name="uq_identities_user_provider"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The provider's name in OIDC_PROVIDERS.
    provider: Mapped[str] = mapped_column(String(64))
    # The ID token's `sub`: unique and never reassigned at its provider (OpenID Connect
    # Core 2), unlike an email address.
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    # The address the provider named when the identity was linked, shown to its owner.
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("status IN ('todo', 'in_progress', 'done')", name="ck_tasks_status"),
        CheckConstraint("char_length(title) BETWEEN 1 AND 200", name="ck_tasks_title_length"),
        CheckConstraint(
            "description IS NULL OR char_length(description) <= 10000",
            name="ck_tasks_description_length",
        ),
        # Serves the owner-scoped, newest-first listing and its status filter.
        Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),
        Index("ix_tasks_owner_status_created", "owner_id", "status", "created_at", "id"),
        # The other sort orders of the listing.
        Index("ix_tasks_owner_updated", "owner_id", "updated_at", "id"),
        Index("ix_tasks_owner_title", "owner_id", "title", "id"),
        # pg_trgm: the `q` search (ILIKE '%...%') on either text column.
        Index(
            "ix_tasks_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
        Index(
            "ix_tasks_description_trgm",
            "description",
            postgresql_using="gin",
            postgresql_ops={"description": "gin_trgm_ops"},
        ),
    )

    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), server_default="todo")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Raised by every write: the ETag, and what a conditional write compares (If-Match).
    version: Mapped[int] = mapped_column(BigInteger, server_default="1")


class SecondFactor(Base):
    """An account's TOTP second factor: pending from enrolment until a code confirms it,
    then on. Secrets are sealed (sessions.totp.SecretBox), never stored in the clear."""

    __tablename__ = "second_factors"
    __table_args__ = (
        # On exactly when a confirmed secret is there.
        CheckConstraint(
            "(secret_sealed IS NULL) = (enabled_at IS NULL)", name="ck_second_factors_enabled"
        ),
    )

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The confirmed secret, sealed; NULL while the factor is off.
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A secret enrolled but not confirmed yet, sealed, and when that enrolment started: it
    # expires MFA_ENROLMENT_TTL_SECONDS later.
    pending_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    pending_started_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The last TOTP time step accepted: a code of this step or an earlier one is refused.
    last_time_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RecoveryCode(Base):
    """One recovery code of an account, stored as its HMAC (sessions.totp); used once."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
