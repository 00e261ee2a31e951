"""Every query the service runs, built from the ORM models' columns and executed on a
Core connection. Rows come back as plain dicts (column selects, no identity-map objects,
no ORM session): the read path never pays for ORM instances."""

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.models import Task, User

Row = dict[str, Any]

USER_PUBLIC_COLUMNS = (User.id, User.email, User.created_at)
TASK_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.created_at,
    Task.updated_at,
)
# Ids are bigint: anything outside can match no row, and must not reach PostgreSQL.
MAX_ID = 2**63 - 1


class DuplicateEmailError(Exception):
    """An account with this email (compared case-insensitively) already exists."""


def _valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


def create_user(db: Connection, *, email: str, password_hash: str) -> Row:
    statement = (
        insert(User)
        .values(email=email, password_hash=password_hash)
        .returning(*USER_PUBLIC_COLUMNS)
    )
    try:
        row = db.execute(statement).mappings().one()
    except IntegrityError as error:
        if "uq_users_email_lower" in str(error.orig):
            raise DuplicateEmailError(email) from error
        raise
    return dict(row)


def get_user_credentials(db: Connection, *, email: str) -> Row | None:
    statement = select(User.id, User.password_hash).where(func.lower(User.email) == email.lower())
    row = db.execute(statement).mappings().first()
    return dict(row) if row else None


def get_users_by_ids(db: Connection, *, user_ids: list[int]) -> dict[int, str]:
    """Map user id to email, for the ids that exist."""
    statement = select(User.id, User.email).where(User.id.in_(user_ids))
    return {row.id: row.email for row in db.execute(statement)}


def get_user_id_by_email(db: Connection, *, email: str) -> int | None:
    statement = select(User.id).where(func.lower(User.email) == email.lower())
    return db.execute(statement).scalar_one_or_none()


def update_password_hash(db: Connection, *, user_id: int, password_hash: str) -> None:
    db.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


def create_task(db: Connection, *, owner_id: int, fields: Row) -> Row:
    statement = insert(Task).values(owner_id=owner_id, **fields).returning(*TASK_COLUMNS)
    return dict(db.execute(statement).mappings().one())


def get_task(db: Connection, *, owner_id: int, task_id: int) -> Row | None:
    if not _valid_id(task_id):
        return None
    statement = select(*TASK_COLUMNS).where(Task.id == task_id, Task.owner_id == owner_id)
    row = db.execute(statement).mappings().first()
    return dict(row) if row else None


def list_tasks(
    db: Connection, *, owner_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[Row], int]:
    """One page, newest first (id breaks ties), and the total matching count."""
    conditions = [Task.owner_id == owner_id]
    if status is not None:
        conditions.append(Task.status == status)
    # The window count rides along with the page, saving a round trip; only a page
    # past the end needs a separate count.
    statement = (
        select(*TASK_COLUMNS, func.count().over().label("total"))
        .where(*conditions)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = db.execute(statement).mappings().all()
    if rows:
        total = rows[0]["total"]
        return [{k: v for k, v in row.items() if k != "total"} for row in rows], total
    if offset == 0:
        return [], 0
    total = db.execute(select(func.count()).select_from(Task).where(*conditions)).scalar_one()
    return [], total


def replace_task(db: Connection, *, owner_id: int, task_id: int, fields: Row) -> Row | None:
    if not _valid_id(task_id):
        return None
    statement = (
        update(Task)
        .where(Task.id == task_id, Task.owner_id == owner_id)
        .values(**fields, updated_at=func.now())
        .returning(*TASK_COLUMNS)
    )
    row = db.execute(statement).mappings().first()
    return dict(row) if row else None


def delete_task(db: Connection, *, owner_id: int, task_id: int) -> bool:
    if not _valid_id(task_id):
        return False
    statement = delete(Task).where(Task.id == task_id, Task.owner_id == owner_id).returning(Task.id)
    return db.execute(statement).first() is not None
