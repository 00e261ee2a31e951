"""Per-user tasks. Every query is scoped to the owner: another user's task is a 404."""

from typing import Any

from db import repositories as repo
from db.engine import Database
from service.errors import NotFound
from service.schemas.tasks import TaskWrite

Task = dict[str, Any]


def _fields(data: TaskWrite) -> dict[str, Any]:
    # Only these three are ever written from a request; id, owner and timestamps are not.
    return {
        "title": data.title,
        "description": data.description,
        "status": data.status.value,
    }


def create_task(database: Database, *, owner_id: int, data: TaskWrite) -> Task:
    with database.statement() as db:
        return repo.create_task(db, owner_id=owner_id, fields=_fields(data))


def get_task(database: Database, *, owner_id: int, task_id: int) -> Task:
    with database.statement() as db:
        task = repo.get_task(db, owner_id=owner_id, task_id=task_id)
    if task is None:
        raise NotFound("Task not found")
    return task


def list_tasks(
    database: Database, *, owner_id: int, status: str | None, limit: int, offset: int
) -> dict[str, Any]:
    with database.statement() as db:
        items, total = repo.list_tasks(
            db, owner_id=owner_id, status=status, limit=limit, offset=offset
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def replace_task(database: Database, *, owner_id: int, task_id: int, data: TaskWrite) -> Task:
    with database.statement() as db:
        task = repo.replace_task(db, owner_id=owner_id, task_id=task_id, fields=_fields(data))
    if task is None:
        raise NotFound("Task not found")
    return task


def delete_task(database: Database, *, owner_id: int, task_id: int) -> dict[str, Any]:
    with database.statement() as db:
        deleted = repo.delete_task(db, owner_id=owner_id, task_id=task_id)
    if not deleted:
        raise NotFound("Task not found")
    return {"id": task_id, "deleted": True}
