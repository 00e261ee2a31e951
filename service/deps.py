"""What an endpoint can ask for, as type hints:

    def read_task(task_id: TaskId, caller: Caller, tasks: Tasks) -> Response: ...

`Caller` is the request of an authenticated caller (`caller.user_id`, `caller.session_id`):
an endpoint runs only once admission found its caller (service.edge.admission). A public
endpoint takes its request as `request: ApiRequest` instead. The services come from the
worker's Runtime, through cheap async dependencies that cost no thread hop.
"""

from typing import Annotated

from fastapi import Depends, Request

from service.edge.admission import RequestAttempts
from service.edge.call import ApiRequest, runtime_of
from service.services.accounts import AccountService
from service.services.oidc import OidcService
from service.services.passwords import PasswordService
from service.services.second_factor import SecondFactorService
from service.services.sessions import SessionService
from service.services.tasks import TaskService
from service.services.verification import EmailVerificationService

Caller = ApiRequest


async def _accounts(request: Request) -> AccountService:
    return runtime_of(request).accounts


async def _passwords(request: Request) -> PasswordService:
    return runtime_of(request).password_service


async def _sessions(request: Request) -> SessionService:
    return runtime_of(request).session_service


async def _second_factor(request: Request) -> SecondFactorService:
    return runtime_of(request).second_factor


async def _tasks(request: Request) -> TaskService:
    return runtime_of(request).tasks


async def _verification(request: Request) -> EmailVerificationService:
    return runtime_of(request).verification


async def _oidc(request: Request) -> OidcService:
    return runtime_of(request).oidc


async def _attempts(request: Request) -> RequestAttempts:
    return runtime_of(request).admission.attempts(request)


Accounts = Annotated[AccountService, Depends(_accounts)]
Passwords = Annotated[PasswordService, Depends(_passwords)]
OwnSessions = Annotated[SessionService, Depends(_sessions)]
Tasks = Annotated[TaskService, Depends(_tasks)]
SecondFactor = Annotated[SecondFactorService, Depends(_second_factor)]
Verification = Annotated[EmailVerificationService, Depends(_verification)]
Oidc = Annotated[OidcService, Depends(_oidc)]
# The request's attempts against an account, counted before they are made.
Attempts = Annotated[RequestAttempts, Depends(_attempts)]
