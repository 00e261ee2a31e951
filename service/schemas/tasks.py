from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from service.schemas.common import NO_NUL, Input, PathId, QueryInt


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"


class TaskSort(StrEnum):
    """The listing's order: a field, newest/last first with a leading `-`; the id breaks ties."""

    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"
    by_title = "title"
    by_title_desc = "-title"


TaskId = Annotated[PathId, Path(description="The task's id.")]


class TaskListQuery(Input):
    """The listing's query parameters. Unknown ones are a 422 naming them (a typo is not
    silently ignored), and so is one given twice (each takes one value)."""

    model_config = ConfigDict(extra="forbid")

    limit: QueryInt = Field(default=50, ge=1, le=100, description="Page size.")
    offset: QueryInt = Field(default=0, ge=0, le=2**31 - 1, description="Matching tasks to skip.")
    status: TaskStatus | None = Field(default=None, description="Only tasks in it.")
    q: Annotated[str, Field(min_length=1, max_length=200), NO_NUL] | None = Field(
        default=None,
        description="Only tasks whose title or description contains this, ignoring case; "
        "every character is literal.",
        examples=["report"],
    )
    sort: TaskSort = Field(
        default=TaskSort.created_at_desc,
        description="Field to order by; a leading `-` reverses it.",
    )


TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
BLANKS = " \t\n\r"
# "1..200 characters after trimming", stated as one pattern so that OpenAPI says exactly
# what is accepted: optional blanks, then 1..200 characters that start and end with a
# non-blank, then optional blanks; NUL nowhere (PostgreSQL text cannot hold it). The
# validator below checks the same rule and says it in words.
TITLE_PATTERN = r"^[ \t\n\r]*[^ \t\n\r\x00](?:[^\x00]{0,198}[^ \t\n\r\x00])?[ \t\n\r]*$"


def _title(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "Title must not contain NUL characters")
    trimmed = value.strip(BLANKS)
    if not trimmed:
        raise PydanticCustomError(
            "string_too_short",
            "Title should have at least 1 character after trimming blanks",
            {"min_length": 1},
        )
    if len(trimmed) > TITLE_MAX:
        raise PydanticCustomError(
            "string_too_long",
            "Title should have at most {max_length} characters after trimming blanks",
            {"max_length": TITLE_MAX},
        )
    return trimmed


Title = Annotated[
    str,
    AfterValidator(_title),
    Field(
        description="1..200 characters once surrounding blanks are trimmed (stored trimmed). "
        "Blanks around the title do not count towards the 200, so no maxLength bounds what "
        "may be sent; the pattern states the rule exactly.",
        examples=["Write the quarterly report"],
        json_schema_extra={"minLength": 1, "pattern": TITLE_PATTERN},
    ),
]
Description = Annotated[
    str,
    Field(
        max_length=DESCRIPTION_MAX,
        description="Up to 10,000 characters.",
        examples=["Figures from the finance sheet, then the summary."],
    ),
    NO_NUL,
]


class TaskWrite(Input):
    """A full task, as POST creates it and PUT replaces it. Fields a client may not set
    (id, owner, timestamps) and unknown fields are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "title": "Write the quarterly report",
                    "description": "Figures from the finance sheet, then the summary.",
                    "status": "in_progress",
                }
            ]
        },
    )

    title: Title
    description: Description | None = Field(
        default=None, description="Up to 10,000 characters; null or absent: no description."
    )
    status: TaskStatus = Field(default=TaskStatus.todo, description="`todo` when absent.")


TaskCreate = TaskWrite
TaskUpdate = TaskWrite


class TaskPatch(Input):
    """A JSON merge patch (RFC 7396) of a task: only the fields sent change. `description:
    null` clears the description; `title` and `status` cannot be null. Fields a client may
    not set (id, owner, timestamps) and unknown fields are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"status": "done"}, {"description": None}]},
    )

    # Absent by default, yet never null: the placeholder for "not sent" is no value the
    # field accepts (`changes()` reads only the fields sent), and OpenAPI shows no default.
    title: Title = Field(default_factory=lambda: None)  # type: ignore[assignment]
    description: Description | None = Field(
        default=None, description="null clears the description."
    )
    status: TaskStatus = Field(default_factory=lambda: None)  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        """The fields the patch sets, by name, with the values to store."""
        values = {"title": self.title, "description": self.description, "status": self.status}
        return {
            name: value.value if isinstance(value, TaskStatus) else value
            for name, value in values.items()
            if name in self.model_fields_set
        }


TASK_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "title": "Write the quarterly report",
    "description": "Figures from the finance sheet, then the summary.",
    "status": "in_progress",
    "created_at": "2026-12-01T09:30:00Z",
    "updated_at": "2026-12-01T10:05:12.345678Z",
}


class TaskRead(BaseModel):
    """A task of the caller's. Its ETag travels in the `ETag` header, not in the body."""

    model_config = ConfigDict(json_schema_extra={"examples": [TASK_EXAMPLE]})

    id: int = Field(description="The task's id.")
    title: str = Field(description="Trimmed, 1..200 characters.")
    description: str | None = Field(description="Up to 10,000 characters, or null.")
    status: TaskStatus
    created_at: datetime = Field(description="When the task was created (UTC).")
    updated_at: datetime = Field(description="When the task was last written (UTC).")


class TaskPage(BaseModel):
    """One page of the caller's tasks, in the requested order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [TASK_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )

    items: list[TaskRead]
    total: int = Field(description="Tasks that match the filters, over every page.")
    limit: int = Field(description="The page size used.")
    offset: int = Field(description="How many matching tasks come before this page.")


class TaskDeleted(BaseModel):
    """The task is gone."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 42, "deleted": True}]})

    id: int
    deleted: bool
