from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.schemas.common import NoNulStr


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"


# "1..200 characters after trimming", stated as one pattern so that OpenAPI says exactly
# what is accepted: optional blanks, then 1..200 characters that start and end with a
# non-blank, then optional blanks; NUL nowhere (PostgreSQL text cannot hold it).
BLANKS = " \t\n\r"
TITLE_PATTERN = r"^[ \t\n\r]*[^ \t\n\r\x00](?:[^\x00]{0,198}[^ \t\n\r\x00])?[ \t\n\r]*$"


def _trim(value: str) -> str:
    return value.strip(BLANKS)


class TaskWrite(BaseModel):
    """Body of POST and PUT: a full task. Unknown fields (id, owner, timestamps) are ignored."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[str, Field(pattern=TITLE_PATTERN), AfterValidator(_trim)]
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
