from fastapi import APIRouter, Request, Response

from service.deps import (
    BEARER_IN_OPENAPI,
    Principal,
    authenticated,
    client_ip,
    credentials_check,
    enforce_login_limit,
    registration,
    within_budget,
)
from service.responses import json_response
from service.runtime import Runtime
from service.schemas.auth import (
    Credentials,
    Message,
    RefreshRequest,
    TokenPair,
    UserRead,
)
from service.schemas.common import error_responses
from service.schemas.sessions import RevokedCount
from service.services import accounts

router = APIRouter(tags=["auth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client(request: Request) -> accounts.ClientInfo:
    return accounts.ClientInfo(
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )


@router.post(
    "/register",
    status_code=201,
    response_model=UserRead,
    responses=error_responses(409, 413, 422, 429, 503),
)
@registration
def register(body: Credentials, runtime: Runtime) -> Response:
    user = accounts.register(runtime, email=str(body.email), password=body.password)
    return json_response(user, status_code=201)


@router.post(
    "/login",
    response_model=TokenPair,
    responses=error_responses(401, 413, 422, 429, 503),
)
@credentials_check
def login(body: Credentials, request: Request, runtime: Runtime) -> Response:
    enforce_login_limit(runtime, request, str(body.email))
    tokens = accounts.login(
        runtime, email=str(body.email), password=body.password, client=_client(request)
    )
    return json_response(tokens, headers=NO_STORE)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=error_responses(401, 413, 422, 429, 503),
)
@within_budget
def refresh(body: RefreshRequest, runtime: Runtime) -> Response:
    tokens = accounts.refresh(runtime, refresh_token=body.refresh_token)
    return json_response(tokens, headers=NO_STORE)


@router.post(
    "/logout",
    response_model=Message,
    responses=error_responses(401, 429, 503),
    dependencies=BEARER_IN_OPENAPI,
)
@authenticated
def logout(principal: Principal) -> Response:
    accounts.logout(principal.runtime, user_id=principal.user_id, session_id=principal.session_id)
    return json_response({"detail": "Logged out"})


@router.post(
    "/logout/all",
    response_model=RevokedCount,
    responses=error_responses(401, 429, 503),
    dependencies=BEARER_IN_OPENAPI,
)
@authenticated
def logout_all(principal: Principal) -> Response:
    revoked = accounts.logout_all(principal.runtime, user_id=principal.user_id)
    return json_response({"revoked": revoked})
