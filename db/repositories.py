"""Every query the service runs, built from the ORM models' columns and executed on a
Core connection. Rows come back as plain dicts (column selects, no identity-map objects,
no ORM session): the read path never pays for ORM instances. The statements are built
once, with bound parameters, so a request does not rebuild an expression tree."""

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
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


_EMAIL_MATCHES = func.lower(User.email) == func.lower(bindparam("email"))
_CREATE_USER = insert(User).returning(*USER_PUBLIC_COLUMNS)
_USER_CREDENTIALS = select(User.id, User.password_hash).where(_EMAIL_MATCHES)
_USER_ID_BY_EMAIL = select(User.id).where(_EMAIL_MATCHES)
_SET_PASSWORD_HASH = (
    update(User).where(User.id == bindparam("user_id")).values(password_hash=bindparam("hash"))
)

# Named apart from the columns: UPDATE reserves the column names for its SET values.
_OWNED_TASK = (Task.id == bindparam("task_id"), Task.owner_id == bindparam("owner"))
_CREATE_TASK = insert(Task).returning(*TASK_COLUMNS)
_GET_TASK = select(*TASK_COLUMNS).where(*_OWNED_TASK)
_REPLACE_TASK = (
    update(Task)
    .where(*_OWNED_TASK)
    .values(
        title=bindparam("new_title"),
        description=bindparam("new_description"),
        status=bindparam("new_status"),
        updated_at=func.now(),
    )
    .returning(*TASK_COLUMNS)
)
_DELETE_TASK = delete(Task).where(*_OWNED_TASK).returning(Task.id)


def _task_page(*, with_status: bool) -> Any:
    conditions = [Task.owner_id == bindparam("owner")]
    if with_status:
        conditions.append(Task.status == bindparam("status"))
    # The window count rides along with the page, saving a round trip; only a page past
    # the end needs a separate count.
    page = (
        select(*TASK_COLUMNS, func.count().over().label("total"))
        .where(*conditions)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count()).select_from(Task).where(*conditions)
    return page, count


_TASK_PAGES = {False: _task_page(with_status=False), True: _task_page(with_status=True)}


def create_user(db: Connection, *, email: str, password_hash: str) -> Row:
    try:
        row = db.execute(_CREATE_USER, {"email": email, "password_hash": password_hash})
        return dict(row.mappings().one())
    except IntegrityError as error:
        if "uq_users_email_lower" in str(error.orig):
            raise DuplicateEmailError(email) from error
        raise


def get_user_credentials(db: Connection, *, email: str) -> Row | None:
    row = db.execute(_USER_CREDENTIALS, {"email": email}).mappings().first()
    return dict(row) if row else None


def get_users_by_ids(db: Connection, *, user_ids: list[int]) -> dict[int, str]:
    """Map user id to email, for the ids that exist."""
    statement = select(User.id, User.email).where(User.id.in_(user_ids))
    return {row.id: row.email for row in db.execute(statement)}


def get_user_id_by_email(db: Connection, *, email: str) -> int | None:
    user_id: int | None = db.execute(_USER_ID_BY_EMAIL, {"email": email}).scalar_one_or_none()
    return user_id


def update_password_hash(db: Connection, *, user_id: int, password_hash: str) -> None:
    db.execute(_SET_PASSWORD_HASH, {"user_id": user_id, "hash": password_hash})


def create_task(db: Connection, *, owner_id: int, fields: Row) -> Row:
    return dict(db.execute(_CREATE_TASK, {"owner_id": owner_id, **fields}).mappings().one())


def get_task(db: Connection, *, owner_id: int, task_id: int) -> Row | None:
    if not _valid_id(task_id):
        return None
    row = db.execute(_GET_TASK, {"task_id": task_id, "owner": owner_id}).mappings().first()
    return dict(row) if row else None


def list_tasks(
    db: Connection, *, owner_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[Row], int]:
    """One page, newest first (id breaks ties), and the total matching count."""
    page, count = _TASK_PAGES[status is not None]
    params = {"owner": owner_id, "status": status, "limit": limit, "offset": offset}
    rows = db.execute(page, params).mappings().all()
    if rows:
        total = rows[0]["total"]
        return [{k: v for k, v in row.items() if k != "total"} for row in rows], total
    if offset == 0:
        return [], 0
    return [], db.execute(count, params).scalar_one()


def replace_task(db: Connection, *, owner_id: int, task_id: int, fields: Row) -> Row | None:
    if not _valid_id(task_id):
        return None
    params = {"task_id": task_id, "owner": owner_id}
    params |= {f"new_{name}": value for name, value in fields.items()}
    row = db.execute(_REPLACE_TASK, params).mappings().first()
    return dict(row) if row else None


def delete_task(db: Connection, *, owner_id: int, task_id: int) -> bool:
    if not _valid_id(task_id):
        return False
    params = {"task_id": task_id, "owner": owner_id}
    return db.execute(_DELETE_TASK, params).first() is not None
