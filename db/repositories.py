"""Every query the service runs: ORM-enabled statements on the mapped classes, executed
through the caller's `Session`. Statements are built once, with bound parameters, so a
request does not rebuild an expression tree; the Session turns rows into `User` and
`Task` instances."""

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, any_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.emails import canonical_email
from db.models import OidcIdentity, RecoveryCode, SecondFactor, Task, User

# Ids are bigint: anything outside can match no row, and must not reach PostgreSQL.
MAX_ID = 2**63 - 1
UNIQUE_EMAIL = "uq_users_email_canonical"
UNIQUE_SUBJECT = "uq_identities_provider_subject"


class TaskFields(Protocol):
    """What a task shows: a `Task`, or a row of the listing."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class DuplicateEmailError(Exception):
    """An account with this email (in its canonical form) already exists."""


class DuplicateIdentityError(Exception):
    """The identity is linked already: to another account (`subject_taken`), or the account
    has another identity at that provider."""

    def __init__(self, *, subject_taken: bool) -> None:
        super().__init__("subject linked" if subject_taken else "provider linked")
        self.subject_taken = subject_taken


def _valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


_USER_BY_EMAIL = select(User).where(User.email_canonical == bindparam("canonical"))
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
_REHASH_PASSWORD = (
    update(User).where(User.id == bindparam("user_id")).values(password_hash=bindparam("hash"))
)
_CHANGE_PASSWORD = (
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(password_hash=bindparam("hash"), credentials_version=User.credentials_version + 1)
    .returning(User.credentials_version)
)
_MARK_EMAIL_VERIFIED = (
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(email_verified_at=func.coalesce(User.email_verified_at, func.now()))
    .returning(User.id)
    .execution_options(synchronize_session=False)
)
_IDENTITY = select(OidcIdentity).where(
    OidcIdentity.provider == bindparam("provider"), OidcIdentity.subject == bindparam("subject")
)
_IDENTITIES_OF = (
    select(OidcIdentity)
    .where(OidcIdentity.user_id == bindparam("user_id"))
    .order_by(OidcIdentity.linked_at, OidcIdentity.id)
)
_DELETE_IDENTITY = (
    delete(OidcIdentity)
    .where(
        OidcIdentity.user_id == bindparam("user_id"), OidcIdentity.provider == bindparam("provider")
    )
    .returning(OidcIdentity.id)
    .execution_options(synchronize_session=False)
)
_DELETE_USERS_TASKS = (
    delete(Task)
    .where(Task.owner_id == bindparam("user_id"))
    .execution_options(synchronize_session=False)
)
_DELETE_USER = (
    delete(User)
    .where(User.id == bindparam("user_id"))
    .returning(User.credentials_version)
    .execution_options(synchronize_session=False)
)

# Named apart from the columns: UPDATE reserves the column names for its SET values.
_OWNED_TASK = (Task.id == bindparam("task_id"), Task.owner_id == bindparam("owner"))
# A conditional write (If-Match) names the versions it was made against; the comparison is
# in the write's own WHERE, so a concurrent write that got there first makes it match nothing.
_VERSION_MATCHES = Task.version == any_(bindparam("versions", type_=ARRAY(BigInteger)))
WRITABLE_TASK_FIELDS = ("title", "description", "status")
_GET_TASK = select(Task).where(*_OWNED_TASK)
_TASK_EXISTS = select(Task.id).where(*_OWNED_TASK)


@functools.cache
def _update_task(fields: frozenset[str], conditional: bool) -> Any:
    statement = (
        update(Task)
        .where(*_OWNED_TASK)
        .values(
            **{name: bindparam(f"new_{name}") for name in WRITABLE_TASK_FIELDS if name in fields},
            updated_at=func.now(),
            version=Task.version + 1,
        )
        .returning(Task)
        # Nothing in the Session to bring in line: the statement's own RETURNING loads the row.
        .execution_options(synchronize_session=False)
    )
    return statement.where(_VERSION_MATCHES) if conditional else statement


@functools.cache
def _delete_task(conditional: bool) -> Any:
    statement = (
        delete(Task)
        .where(*_OWNED_TASK)
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    return statement.where(_VERSION_MATCHES) if conditional else statement


# The listing's orders: each with the id as the tie-break, in the same direction.
TASK_ORDERS: dict[str, tuple[Any, ...]] = {
    "created_at": (Task.created_at.asc(), Task.id.asc()),
    "-created_at": (Task.created_at.desc(), Task.id.desc()),
    "updated_at": (Task.updated_at.asc(), Task.id.asc()),
    "-updated_at": (Task.updated_at.desc(), Task.id.desc()),
    "title": (Task.title.asc(), Task.id.asc()),
    "-title": (Task.title.desc(), Task.id.desc()),
}


# The listing reads the mapped attributes it shows (an ORM-enabled select of them), so its
# rows come back as rows rather than as instances in the Session's identity map, which
# cost the listing more than anything else (docs/performance.md). It changes nothing.
_LISTED = (Task.id, Task.title, Task.description, Task.status, Task.created_at, Task.updated_at)


@functools.cache
def _task_page(*, with_status: bool, with_search: bool, order: str) -> tuple[Any, Any]:
    conditions = [Task.owner_id == bindparam("owner")]
    if with_status:
        conditions.append(Task.status == bindparam("status"))
    if with_search:
        # ILIKE on each column, so that each one's trigram index serves it.
        pattern: Any = bindparam("pattern")
        conditions.append(or_(Task.title.ilike(pattern), Task.description.ilike(pattern)))
    # The window count rides along with the page, saving a round trip; only a page past
    # the end needs a separate count.
    page = (
        select(*_LISTED, func.count().over().label("total"))
        .where(*conditions)
        .order_by(*TASK_ORDERS[order])
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count()).select_from(Task).where(*conditions)
    return page, count


def _substring_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards and escapes taken literally
    (backslash is PostgreSQL's default LIKE escape)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def create_user(
    db: Session, *, email: str, password_hash: str | None, email_verified_at: datetime | None = None
) -> User:
    user = User(
        email=email,
        email_canonical=canonical_email(email),
        password_hash=password_hash,
        email_verified_at=email_verified_at,
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError as error:
        db.rollback()
        if UNIQUE_EMAIL in str(error.orig):
            raise DuplicateEmailError(email) from error
        raise
    return user


def get_user_by_email(db: Session, *, email: str) -> User | None:
    """The account this address reaches, whatever its spelling."""
    return db.scalars(_USER_BY_EMAIL, {"canonical": canonical_email(email)}).first()


def get_users_by_ids(db: Session, *, user_ids: Sequence[int]) -> dict[int, str]:
    """Map user id to email, for the ids that exist."""
    rows = db.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
    return {user_id: email for user_id, email in rows}


def get_user(db: Session, *, user_id: int) -> User | None:
    if not _valid_id(user_id):
        return None
    return db.scalars(_USER_BY_ID, {"user_id": user_id}).first()


def rehash_password(db: Session, *, user_id: int, password_hash: str) -> None:
    """The same password, hashed with new parameters: its credentials stay valid."""
    db.execute(_REHASH_PASSWORD, {"user_id": user_id, "hash": password_hash})


def change_password(db: Session, *, user_id: int, password_hash: str) -> int | None:
    """Set a new password; return the account's new credentials version (None: no such
    account)."""
    row = db.execute(_CHANGE_PASSWORD, {"user_id": user_id, "hash": password_hash}).first()
    return int(row[0]) if row else None


def mark_email_verified(db: Session, *, user_id: int) -> bool:
    """Record that the account's address is proven (once: the first time stays); False when
    no such account exists."""
    if not _valid_id(user_id):
        return False
    return db.execute(_MARK_EMAIL_VERIFIED, {"user_id": user_id}).first() is not None


def lock_user(db: Session, *, user_id: int) -> User | None:
    """The account, its row locked until the transaction ends: changes to its ways of
    signing in that must see each other (`Database.transaction`)."""
    if not _valid_id(user_id):
        return None
    return db.scalars(_USER_BY_ID.with_for_update(), {"user_id": user_id}).first()


def get_identity(db: Session, *, provider: str, subject: str) -> OidcIdentity | None:
    return db.scalars(_IDENTITY, {"provider": provider, "subject": subject}).first()


def list_identities(db: Session, *, user_id: int) -> Sequence[OidcIdentity]:
    return db.scalars(_IDENTITIES_OF, {"user_id": user_id}).all()


def create_identity(
    db: Session, *, user_id: int, provider: str, subject: str, email: str | None
) -> OidcIdentity:
    """Link the identity; DuplicateIdentityError when it is linked already, or the account
    has another identity at that provider. Inside `Database.transaction`, a refusal rolls
    back everything the transaction did."""
    identity = OidcIdentity(user_id=user_id, provider=provider, subject=subject, email=email)
    db.add(identity)
    try:
        db.flush()
    except IntegrityError as error:
        db.rollback()
        if UNIQUE_EMAIL in str(error.orig):
            raise DuplicateEmailError(email) from error
        raise DuplicateIdentityError(subject_taken=UNIQUE_SUBJECT in str(error.orig)) from error
    return identity


def delete_identity(db: Session, *, user_id: int, provider: str) -> bool:
    return (
        db.execute(_DELETE_IDENTITY, {"user_id": user_id, "provider": provider}).first() is not None
    )


def delete_user(db: Session, *, user_id: int) -> int | None:
    """Delete the account and its tasks; return its last credentials version (None: no
    such account). Both statements belong in one transaction (`Database.transaction`)."""
    db.execute(_DELETE_USERS_TASKS, {"user_id": user_id})
    row = db.execute(_DELETE_USER, {"user_id": user_id}).first()
    return int(row[0]) if row else None


def create_task(db: Session, *, owner_id: int, fields: dict[str, Any]) -> Task:
    task = Task(owner_id=owner_id, **fields)
    db.add(task)
    db.flush()
    return task


def get_task(db: Session, *, owner_id: int, task_id: int) -> Task | None:
    if not _valid_id(task_id):
        return None
    return db.scalars(_GET_TASK, {"task_id": task_id, "owner": owner_id}).first()


def task_exists(db: Session, *, owner_id: int, task_id: int) -> bool:
    if not _valid_id(task_id):
        return False
    return db.execute(_TASK_EXISTS, {"task_id": task_id, "owner": owner_id}).first() is not None


def list_tasks(
    db: Session,
    *,
    owner_id: int,
    status: str | None,
    search: str | None,
    order: str,
    limit: int,
    offset: int,
) -> tuple[Sequence[TaskFields], int]:
    """One page in `order` (see TASK_ORDERS), and the total matching count. `search`: a
    case-insensitive substring of the title or the description."""
    page, count = _task_page(
        with_status=status is not None, with_search=search is not None, order=order
    )
    params: dict[str, Any] = {"owner": owner_id, "limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status
    if search is not None:
        params["pattern"] = _substring_pattern(search)
    rows = db.execute(page, params).all()
    if rows:
        return rows, rows[0].total
    if offset == 0:
        return [], 0
    return [], db.execute(count, params).scalar_one()


def update_task(
    db: Session,
    *,
    owner_id: int,
    task_id: int,
    fields: dict[str, Any],
    versions: Sequence[int] | None = None,
) -> Task | None:
    """Set the given fields (a subset of WRITABLE_TASK_FIELDS) and raise the version; when
    `versions` is given, only if the task's current version is one of them. None: no such
    task of this owner, or (conditional) its version is not one of those."""
    if not _valid_id(task_id):
        return None
    params: dict[str, Any] = {"task_id": task_id, "owner": owner_id}
    params |= {f"new_{name}": value for name, value in fields.items()}
    if versions is not None:
        params["versions"] = list(versions)
    statement = _update_task(frozenset(fields), versions is not None)
    task: Task | None = db.scalars(statement, params).first()
    return task


def delete_task(
    db: Session, *, owner_id: int, task_id: int, versions: Sequence[int] | None = None
) -> bool:
    """Delete the task; when `versions` is given, only if its version is one of them."""
    if not _valid_id(task_id):
        return False
    params: dict[str, Any] = {"task_id": task_id, "owner": owner_id}
    if versions is not None:
        params["versions"] = list(versions)
    return db.execute(_delete_task(versions is not None), params).first() is not None


# ---------------------------------------------------------------- the second factor

_SECOND_FACTOR = select(SecondFactor).where(SecondFactor.user_id == bindparam("user_id"))
_FACTOR_ENABLED = select(SecondFactor.enabled_at).where(
    SecondFactor.user_id == bindparam("user_id"), SecondFactor.secret_sealed.is_not(None)
)
# The compare-and-set that makes a TOTP code single-use: only a later step than the last
# accepted one moves it, so of two logins with one code, one matches a row.
_USE_TIME_STEP = (
    update(SecondFactor)
    .where(
        SecondFactor.user_id == bindparam("account"),
        SecondFactor.secret_sealed.is_not(None),
        or_(
            SecondFactor.last_time_step.is_(None),
            SecondFactor.last_time_step < bindparam("step"),
        ),
    )
    .values(last_time_step=bindparam("step"))
    .returning(SecondFactor.user_id)
    .execution_options(synchronize_session=False)
)
_ENABLE = (
    update(SecondFactor)
    .where(
        SecondFactor.user_id == bindparam("account"),
        SecondFactor.secret_sealed.is_(None),
        SecondFactor.pending_sealed == bindparam("pending"),
    )
    .values(
        secret_sealed=SecondFactor.pending_sealed,
        pending_sealed=None,
        pending_started_at=None,
        enabled_at=func.now(),
        last_time_step=bindparam("step"),
    )
    .returning(SecondFactor.user_id)
    .execution_options(synchronize_session=False)
)
_USE_RECOVERY_CODE = (
    update(RecoveryCode)
    .where(
        RecoveryCode.user_id == bindparam("account"),
        RecoveryCode.code_hash == bindparam("hash"),
        RecoveryCode.used_at.is_(None),
    )
    .values(used_at=func.now())
    .returning(RecoveryCode.id)
    .execution_options(synchronize_session=False)
)
_UNUSED_RECOVERY_CODES = select(func.count()).where(
    RecoveryCode.user_id == bindparam("user_id"), RecoveryCode.used_at.is_(None)
)
_DELETE_RECOVERY_CODES = (
    delete(RecoveryCode)
    .where(RecoveryCode.user_id == bindparam("user_id"))
    .execution_options(synchronize_session=False)
)
_DELETE_SECOND_FACTOR = (
    delete(SecondFactor)
    .where(SecondFactor.user_id == bindparam("user_id"))
    .returning(SecondFactor.enabled_at)
    .execution_options(synchronize_session=False)
)
_RESEAL = (
    update(SecondFactor)
    .where(
        SecondFactor.user_id == bindparam("account"),
        SecondFactor.secret_sealed.is_not_distinct_from(bindparam("old_secret")),
        SecondFactor.pending_sealed.is_not_distinct_from(bindparam("old_pending")),
    )
    .values(secret_sealed=bindparam("new_secret"), pending_sealed=bindparam("new_pending"))
    .returning(SecondFactor.user_id)
    .execution_options(synchronize_session=False)
)


def get_second_factor(db: Session, *, user_id: int) -> SecondFactor | None:
    return db.scalars(_SECOND_FACTOR, {"user_id": user_id}).first()


def second_factor_enabled(db: Session, *, user_id: int) -> bool:
    return db.execute(_FACTOR_ENABLED, {"user_id": user_id}).first() is not None


def set_pending_second_factor(db: Session, *, user_id: int, pending_sealed: str) -> None:
    """A new enrolment: its sealed secret waits for a code; an earlier pending one is
    replaced, a confirmed one stays (the service enrols only while the factor is off)."""
    statement = pg_insert(SecondFactor).values(
        user_id=user_id, pending_sealed=pending_sealed, pending_started_at=func.now()
    )
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[SecondFactor.user_id],
            set_={
                "pending_sealed": statement.excluded.pending_sealed,
                "pending_started_at": statement.excluded.pending_started_at,
            },
        )
    )


def enable_second_factor(
    db: Session, *, user_id: int, pending_sealed: str, time_step: int, code_hashes: Sequence[str]
) -> bool:
    """Turn on the pending secret `pending_sealed` (the one a code was checked against),
    with `time_step` as the last one used, and the recovery codes `code_hashes` in place of
    any. False when that secret is no longer the pending one. In one transaction."""
    row = db.execute(
        _ENABLE, {"account": user_id, "pending": pending_sealed, "step": time_step}
    ).first()
    if row is None:
        return False
    replace_recovery_codes(db, user_id=user_id, code_hashes=code_hashes)
    return True


def use_time_step(db: Session, *, user_id: int, time_step: int) -> bool:
    """Accept a TOTP code of `time_step`: True only if it is later than the last one
    accepted, which it becomes."""
    params = {"account": user_id, "step": time_step}
    return db.execute(_USE_TIME_STEP, params).first() is not None


def use_recovery_code(db: Session, *, user_id: int, code_hash: str) -> bool:
    """Spend the unused recovery code with this hash; False when there is none."""
    params = {"account": user_id, "hash": code_hash}
    return db.execute(_USE_RECOVERY_CODE, params).first() is not None


def unused_recovery_codes(db: Session, *, user_id: int) -> int:
    return int(db.execute(_UNUSED_RECOVERY_CODES, {"user_id": user_id}).scalar_one())


def replace_recovery_codes(db: Session, *, user_id: int, code_hashes: Sequence[str]) -> None:
    """Every recovery code of the account replaced by these. In one transaction."""
    db.execute(_DELETE_RECOVERY_CODES, {"user_id": user_id})
    db.execute(insert(RecoveryCode), [{"user_id": user_id, "code_hash": h} for h in code_hashes])


def delete_second_factor(db: Session, *, user_id: int) -> bool:
    """The factor off and its recovery codes gone; True when it was on. In one
    transaction."""
    db.execute(_DELETE_RECOVERY_CODES, {"user_id": user_id})
    row = db.execute(_DELETE_SECOND_FACTOR, {"user_id": user_id}).first()
    return row is not None and row[0] is not None


def second_factors_page(db: Session, *, after: int, limit: int) -> list[SecondFactor]:
    """Rows in user id order, from the first after `after` (a key rotation's batches)."""
    statement = (
        select(SecondFactor)
        .where(SecondFactor.user_id > after)
        .order_by(SecondFactor.user_id)
        .limit(limit)
    )
    return list(db.scalars(statement))


def reseal_second_factor(
    db: Session,
    *,
    user_id: int,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
) -> bool:
    """Store the secrets sealed again, if they are still `old` (secret, pending); False
    when a request changed them in between (they are sealed under the new key anyway)."""
    params = {
        "account": user_id,
        "old_secret": old[0],
        "old_pending": old[1],
        "new_secret": new[0],
        "new_pending": new[1],
    }
    return db.execute(_RESEAL, params).first() is not None
