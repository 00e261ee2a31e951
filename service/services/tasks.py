"""Per-user tasks. Every query is scoped to the owner: another user's task is a 404.

Each task carries an ETag (service.etags); writes may be conditional on it (If-Match), and
the version comparison is part of the write statement itself, so of two writers holding
the same ETag exactly one succeeds.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from db import repositories as repo
from db.engine import Database
from db.models import Task
from service.errors import NotFound, PreconditionFailed
from service.etags import if_match_versions, none_match, task_etag
from service.schemas.tasks import TaskPatch, TaskWrite

TaskView = dict[str, Any]


def task_view(task: repo.TaskFields) -> TaskView:
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


@dataclass(frozen=True, slots=True)
class TaggedTask:
    """A task as a response shows it, with its ETag; `modified` is False when the client's
    If-None-Match already names that ETag (a 304)."""

    view: TaskView
    etag: str
    modified: bool = True


def _tagged(task: Task, *, modified: bool = True) -> TaggedTask:
    return TaggedTask(task_view(task), task_etag(task.id, task.version), modified)


def _fields(data: TaskWrite) -> dict[str, Any]:
    # Only these three are ever written from a request; id, owner and timestamps are not.
    return {"title": data.title, "description": data.description, "status": data.status.value}


def _missing_or_changed(db: Session, *, owner_id: int, task_id: int, conditional: bool) -> NoReturn:
    """Raise why a write matched no row: a task that exists failed its If-Match."""
    if conditional and repo.task_exists(db, owner_id=owner_id, task_id=task_id):
        raise PreconditionFailed()
    raise NotFound("Task not found")


class TaskService:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    def create(self, *, owner_id: int, data: TaskWrite) -> TaggedTask:
        with self._database.session() as db:
            return _tagged(repo.create_task(db, owner_id=owner_id, fields=_fields(data)))

    def get(self, *, owner_id: int, task_id: int, if_none_match: str | None) -> TaggedTask:
        with self._database.session() as db:
            task = repo.get_task(db, owner_id=owner_id, task_id=task_id)
            if task is None:
                raise NotFound("Task not found")
            etag = task_etag(task.id, task.version)
            return TaggedTask(task_view(task), etag, none_match(if_none_match, etag))

    def list(
        self,
        *,
        owner_id: int,
        status: str | None,
        search: str | None,
        order: str,
        limit: int,
        offset: int,
    ) -> TaskView:
        with self._database.session() as db:
            items, total = repo.list_tasks(
                db,
                owner_id=owner_id,
                status=status,
                search=search,
                order=order,
                limit=limit,
                offset=offset,
            )
            return {
                "items": [task_view(task) for task in items],
                "total": total,
                "limit": limit,
                "offset": offset,
            }

    def replace(
        self, *, owner_id: int, task_id: int, data: TaskWrite, if_match: str | None
    ) -> TaggedTask:
        return self._write(
            owner_id=owner_id, task_id=task_id, fields=_fields(data), if_match=if_match
        )

    def patch(
        self, *, owner_id: int, task_id: int, patch: TaskPatch, if_match: str | None
    ) -> TaggedTask:
        changes = patch.changes()
        if changes:
            return self._write(
                owner_id=owner_id, task_id=task_id, fields=changes, if_match=if_match
            )
        # An empty patch changes nothing (RFC 7396): the task as it is, if If-Match allows.
        versions = if_match_versions(if_match, task_id=task_id)
        with self._database.session() as db:
            task = repo.get_task(db, owner_id=owner_id, task_id=task_id)
            if task is None:
                raise NotFound("Task not found")
            if versions is not None and task.version not in versions:
                raise PreconditionFailed()
            return _tagged(task)

    def delete(self, *, owner_id: int, task_id: int, if_match: str | None) -> dict[str, Any]:
        versions = if_match_versions(if_match, task_id=task_id)
        with self._database.session() as db:
            if not repo.delete_task(db, owner_id=owner_id, task_id=task_id, versions=versions):
                _missing_or_changed(
                    db, owner_id=owner_id, task_id=task_id, conditional=versions is not None
                )
        return {"id": task_id, "deleted": True}

    def _write(
        self, *, owner_id: int, task_id: int, fields: dict[str, Any], if_match: str | None
    ) -> TaggedTask:
        versions: Sequence[int] | None = if_match_versions(if_match, task_id=task_id)
        with self._database.session() as db:
            task = repo.update_task(
                db, owner_id=owner_id, task_id=task_id, fields=fields, versions=versions
            )
            if task is None:
                _missing_or_changed(
                    db, owner_id=owner_id, task_id=task_id, conditional=versions is not None
                )
            return _tagged(task)
