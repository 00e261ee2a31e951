"""What an endpoint can ask for, as `Annotated` aliases used as type hints:

    def read_task(task_id: TaskId, caller: Caller, tasks: Tasks) -> Response: ...

`Caller` is the authenticated caller; the route wrapper (service.edge.step3_route) fills
it once the session is known to be live, so FastAPI never sees it. The services come from
the worker's Runtime (the app's state), through cheap async dependencies that cost no
thread hop.
"""

from typing import Annotated

from fastapi import Depends, Request

from service.edge.call import Principal
from service.edge.step3_route import FROM_CALL
from service.services.accounts import AccountService
from service.services.passwords import PasswordService
from service.services.sessions import SessionService
from service.services.tasks import TaskService

Caller = Annotated[Principal, FROM_CALL]


async def _accounts(request: Request) -> AccountService:
    service: AccountService = request.app.state.runtime.accounts
    return service


async def _passwords(request: Request) -> PasswordService:
    service: PasswordService = request.app.state.runtime.password_service
    return service


async def _sessions(request: Request) -> SessionService:
    service: SessionService = request.app.state.runtime.session_service
    return service


async def _tasks(request: Request) -> TaskService:
    service: TaskService = request.app.state.runtime.tasks
    return service


Accounts = Annotated[AccountService, Depends(_accounts)]
Passwords = Annotated[PasswordService, Depends(_passwords)]
OwnSessions = Annotated[SessionService, Depends(_sessions)]
Tasks = Annotated[TaskService, Depends(_tasks)]
