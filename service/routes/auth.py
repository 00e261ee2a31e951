from fastapi import APIRouter, Request, Response

from service.deps import (
    CurrentSession,
    PublicBudget,
    RegisterBudget,
    client_ip,
    enforce_login_limit,
)
from service.responses import json_response
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
def register(body: Credentials, runtime: RegisterBudget) -> Response:
    user = accounts.register(runtime, email=str(body.email), password=body.password)
    return json_response(user, status_code=201)


@router.post(
    "/login",
    response_model=TokenPair,
    responses=error_responses(401, 413, 422, 429, 503),
)
def login(body: Credentials, request: Request, runtime: PublicBudget) -> Response:
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
def refresh(body: RefreshRequest, runtime: PublicBudget) -> Response:
    tokens = accounts.refresh(runtime, refresh_token=body.refresh_token)
    return json_response(tokens, headers=NO_STORE)


@router.post("/logout", response_model=Message, responses=error_responses(401, 429, 503))
def logout(principal: CurrentSession) -> Response:
    accounts.logout(principal.runtime, user_id=principal.user_id, session_id=principal.session_id)
    return json_response({"detail": "Logged out"})


@router.post("/logout/all", response_model=RevokedCount, responses=error_responses(401, 429, 503))
def logout_all(principal: CurrentSession) -> Response:
    revoked = accounts.logout_all(principal.runtime, user_id=principal.user_id)
    return json_response({"revoked": revoked})
