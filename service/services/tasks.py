"""Per-user tasks. Every query is scoped to the owner: another user's task is a 404."""

from typing import Any

from db import repositories as repo
from db.engine import Database
from db.models import Task
from service.errors import NotFound
from service.schemas.tasks import TaskWrite

TaskView = dict[str, Any]


def task_view(task: Task) -> TaskView:
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _fields(data: TaskWrite) -> dict[str, Any]:
    # Only these three are ever written from a request; id, owner and timestamps are not.
    return {"title": data.title, "description": data.description, "status": data.status.value}


class TaskService:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    def create(self, *, owner_id: int, data: TaskWrite) -> TaskView:
        with self._database.session() as db:
            return task_view(repo.create_task(db, owner_id=owner_id, fields=_fields(data)))

    def get(self, *, owner_id: int, task_id: int) -> TaskView:
        with self._database.session() as db:
            task = repo.get_task(db, owner_id=owner_id, task_id=task_id)
            if task is None:
                raise NotFound("Task not found")
            return task_view(task)

    def list(self, *, owner_id: int, status: str | None, limit: int, offset: int) -> TaskView:
        with self._database.session() as db:
            items, total = repo.list_tasks(
                db, owner_id=owner_id, status=status, limit=limit, offset=offset
            )
            return {
                "items": [task_view(task) for task in items],
                "total": total,
                "limit": limit,
                "offset": offset,
            }

    def replace(self, *, owner_id: int, task_id: int, data: TaskWrite) -> TaskView:
        with self._database.session() as db:
            task = repo.replace_task(db, owner_id=owner_id, task_id=task_id, fields=_fields(data))
            if task is None:
                raise NotFound("Task not found")
            return task_view(task)

    def delete(self, *, owner_id: int, task_id: int) -> dict[str, Any]:
        with self._database.session() as db:
            if not repo.delete_task(db, owner_id=owner_id, task_id=task_id):
                raise NotFound("Task not found")
        return {"id": task_id, "deleted": True}
