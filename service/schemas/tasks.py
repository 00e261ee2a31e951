from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.schemas.common import NoNulStr


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class TaskWrite(BaseModel):
    """Body of POST and PUT: a full task. Unknown fields (id, owner, timestamps) are ignored."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[NoNulStr, Field(min_length=1, max_length=200), BeforeValidator(_strip)]
    description: Annotated[NoNulStr, Field(max_length=10_000)] | None = None
    status: TaskStatus = TaskStatus.todo


TaskCreate = TaskWrite
TaskUpdate = TaskWrite


class TaskRead(BaseModel):
    id: int
    title: str
    description: str | None
    status: TaskStatus
    created_at: datetime
    updated_at: datetime


class TaskPage(BaseModel):
    items: list[TaskRead]
    total: int
    limit: int
    offset: int


class TaskDeleted(BaseModel):
    id: int
    deleted: bool = True
