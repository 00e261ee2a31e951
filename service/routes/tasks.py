from typing import Annotated

from fastapi import APIRouter, Query, Response

from service.deps import BEARER_IN_OPENAPI, Principal, authenticated
from service.responses import json_response
from service.schemas.common import error_responses
from service.schemas.tasks import (
    TaskCreate,
    TaskDeleted,
    TaskPage,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)
from service.services import tasks

router = APIRouter(prefix="/tasks", tags=["tasks"], dependencies=BEARER_IN_OPENAPI)
COMMON_ERRORS = (401, 422, 429, 503)


@router.post(
    "", status_code=201, response_model=TaskRead, responses=error_responses(*COMMON_ERRORS, 413)
)
@authenticated
def create_task(body: TaskCreate, principal: Principal) -> Response:
    task = tasks.create_task(principal.runtime.database, owner_id=principal.user_id, data=body)
    return json_response(task, status_code=201, headers={"Location": f"/tasks/{task['id']}"})


@router.get("", response_model=TaskPage, responses=error_responses(*COMMON_ERRORS))
@authenticated
def list_tasks(
    principal: Principal,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    status: TaskStatus | None = None,
) -> Response:
    page = tasks.list_tasks(
        principal.runtime.database,
        owner_id=principal.user_id,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
    )
    return json_response(page)


@router.get("/{task_id}", response_model=TaskRead, responses=error_responses(*COMMON_ERRORS, 404))
@authenticated
def get_task(task_id: int, principal: Principal) -> Response:
    task = tasks.get_task(principal.runtime.database, owner_id=principal.user_id, task_id=task_id)
    return json_response(task)


@router.put(
    "/{task_id}", response_model=TaskRead, responses=error_responses(*COMMON_ERRORS, 404, 413)
)
@authenticated
def replace_task(task_id: int, body: TaskUpdate, principal: Principal) -> Response:
    task = tasks.replace_task(
        principal.runtime.database, owner_id=principal.user_id, task_id=task_id, data=body
    )
    return json_response(task)


@router.delete(
    "/{task_id}", response_model=TaskDeleted, responses=error_responses(*COMMON_ERRORS, 404)
)
@authenticated
def delete_task(task_id: int, principal: Principal) -> Response:
    result = tasks.delete_task(
        principal.runtime.database, owner_id=principal.user_id, task_id=task_id
    )
    return json_response(result)
