"""The caller's tasks."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from service.deps import Caller, Tasks
from service.edge.route import EdgeRoute
from service.responses import json_response, tagged_response
from service.routes.task_docs import responses
from service.schemas.tasks import (
    TaskCreate,
    TaskDeleted,
    TaskId,
    TaskListQuery,
    TaskPage,
    TaskPatch,
    TaskRead,
    TaskUpdate,
)

IfMatch = Annotated[
    str | None,
    Header(
        description="Carry out the write only if the task's current ETag is one of these "
        "(or `*`: any existing task); otherwise 412 and the task is unchanged.",
        examples=['"42-3"'],
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        description="304 with no body when the task's current ETag is one of these.",
        examples=['"42-3"'],
    ),
]
MERGE_PATCH_BODY = {
    "requestBody": {
        "content": {
            "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/TaskPatch"}}
        }
    }
}


router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=EdgeRoute)


@router.post(
    "",
    status_code=201,
    response_model=TaskRead,
    responses=responses(413, 415, success=201, etag=True, location=True),
    summary="Create a task",
    description="Creates a task of the caller's. Answers 201 with the task, its path in "
    "`Location` and its `ETag`.",
)
def create_task(body: TaskCreate, caller: Caller, tasks: Tasks) -> Response:
    task = tasks.create(owner_id=caller.user_id, data=body)
    location = {"Location": f"/tasks/{task.view['id']}"}
    return tagged_response(task, status_code=201, headers=location)


@router.get(
    "",
    response_model=TaskPage,
    responses=responses(),
    summary="List tasks",
    description="One page of the caller's tasks, filtered by `status` and by `q` (a "
    "case-insensitive substring of the title or the description, `%`, `_` and `\\` "
    "taken literally), in the order `sort` names with the id breaking ties. Unknown "
    "query parameters, and a parameter given twice, are 422.",
)
def list_tasks(query: Annotated[TaskListQuery, Query()], caller: Caller, tasks: Tasks) -> Response:
    page = tasks.list(
        owner_id=caller.user_id,
        status=query.status.value if query.status else None,
        search=query.q,
        order=query.sort.value,
        limit=query.limit,
        offset=query.offset,
    )
    return json_response(page)


@router.get(
    "/{task_id}",
    response_model=TaskRead,
    responses=responses(304, 404, etag=True),
    summary="Get a task",
    description="The task, with its `ETag`. With `If-None-Match` naming that ETag: 304 "
    "and no body.",
)
def get_task(
    task_id: TaskId,
    caller: Caller,
    tasks: Tasks,
    if_none_match: IfNoneMatch = None,
) -> Response:
    task = tasks.get(owner_id=caller.user_id, task_id=task_id, if_none_match=if_none_match)
    return tagged_response(task)


@router.put(
    "/{task_id}",
    response_model=TaskRead,
    responses=responses(404, 412, 413, 415, etag=True),
    summary="Replace a task",
    description="Replaces the task's title, description and status (absent optional "
    "fields take their defaults). Conditional on `If-Match` when sent.",
)
def replace_task(
    task_id: TaskId,
    body: TaskUpdate,
    caller: Caller,
    tasks: Tasks,
    if_match: IfMatch = None,
) -> Response:
    task = tasks.replace(owner_id=caller.user_id, task_id=task_id, data=body, if_match=if_match)
    return tagged_response(task)


@router.patch(
    "/{task_id}",
    response_model=TaskRead,
    responses=responses(404, 412, 413, 415, etag=True),
    openapi_extra=MERGE_PATCH_BODY,
    summary="Update some fields of a task",
    description="A JSON merge patch (RFC 7396), sent as `application/json` or "
    "`application/merge-patch+json`: only the fields sent change; `description: null` "
    "clears it; `title` or `status` null or invalid is 422 and nothing changes. "
    "Conditional on `If-Match` when sent.",
)
def patch_task(
    task_id: TaskId,
    body: TaskPatch,
    caller: Caller,
    tasks: Tasks,
    if_match: IfMatch = None,
) -> Response:
    task = tasks.patch(owner_id=caller.user_id, task_id=task_id, patch=body, if_match=if_match)
    return tagged_response(task)


@router.delete(
    "/{task_id}",
    response_model=TaskDeleted,
    responses=responses(404, 412),
    summary="Delete a task",
    description="Deletes the task. Conditional on `If-Match` when sent.",
)
def delete_task(
    task_id: TaskId,
    caller: Caller,
    tasks: Tasks,
    if_match: IfMatch = None,
) -> Response:
    deleted = tasks.delete(owner_id=caller.user_id, task_id=task_id, if_match=if_match)
    return json_response(deleted)
