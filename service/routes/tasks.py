"""The caller's tasks."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.deps import CurrentPrincipal
from service.responses import json_response
from service.runtime import Runtime
from service.schemas.common import error_responses
from service.schemas.tasks import (
    TaskCreate,
    TaskDeleted,
    TaskPage,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)

COMMON_ERRORS = (401, 422, 429, 503)


def build_router(runtime: Runtime) -> APIRouter:
    tasks = runtime.tasks
    router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=runtime.route_class)

    @router.post(
        "", status_code=201, response_model=TaskRead, responses=error_responses(*COMMON_ERRORS, 413)
    )
    def create_task(body: TaskCreate, principal: CurrentPrincipal, request: Request) -> Response:
        task = tasks.create(owner_id=principal.user_id, data=body)
        return json_response(task, status_code=201, headers={"Location": f"/tasks/{task['id']}"})

    @router.get("", response_model=TaskPage, responses=error_responses(*COMMON_ERRORS))
    def list_tasks(
        principal: CurrentPrincipal,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        status: TaskStatus | None = None,
    ) -> Response:
        page = tasks.list(
            owner_id=principal.user_id,
            status=status.value if status else None,
            limit=limit,
            offset=offset,
        )
        return json_response(page)

    @router.get(
        "/{task_id}", response_model=TaskRead, responses=error_responses(*COMMON_ERRORS, 404)
    )
    def get_task(task_id: int, principal: CurrentPrincipal, request: Request) -> Response:
        return json_response(tasks.get(owner_id=principal.user_id, task_id=task_id))

    @router.put(
        "/{task_id}", response_model=TaskRead, responses=error_responses(*COMMON_ERRORS, 404, 413)
    )
    def replace_task(
        task_id: int, body: TaskUpdate, principal: CurrentPrincipal, request: Request
    ) -> Response:
        task = tasks.replace(owner_id=principal.user_id, task_id=task_id, data=body)
        return json_response(task)

    @router.delete(
        "/{task_id}", response_model=TaskDeleted, responses=error_responses(*COMMON_ERRORS, 404)
    )
    def delete_task(task_id: int, principal: CurrentPrincipal, request: Request) -> Response:
        return json_response(tasks.delete(owner_id=principal.user_id, task_id=task_id))

    return router
