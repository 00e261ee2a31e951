"""The public account routes: register, log in, refresh, reset a forgotten password."""

from fastapi import APIRouter, Request, Response

from service.ratelimit import client_ip
from service.responses import NO_STORE, json_response
from service.runtime import Runtime
from service.schemas.auth import (
    Credentials,
    Message,
    PasswordForgot,
    PasswordReset,
    RefreshRequest,
    Registration,
    TokenPair,
    UserRead,
)
from service.schemas.common import error_responses
from service.services.accounts import ClientInfo
from service.threads import hashes_passwords

# The same for every address, known or not.
RESET_REQUESTED = "If an account exists for this email, a reset message is on its way"


def build_router(runtime: Runtime) -> APIRouter:
    accounts, limits, passwords = runtime.accounts, runtime.limits, runtime.password_service
    router = APIRouter(tags=["auth"], route_class=runtime.route_class)

    @router.post(
        "/register",
        status_code=201,
        response_model=UserRead,
        responses=error_responses(409, 413, 422, 429, 503),
    )
    @limits.registration
    @hashes_passwords
    def register(body: Registration, request: Request) -> Response:
        user = accounts.register(email=str(body.email), password=body.password)
        return json_response(user, status_code=201)

    @router.post(
        "/login",
        response_model=TokenPair,
        responses=error_responses(401, 413, 422, 429, 503),
    )
    @limits.password_guess
    @hashes_passwords
    def login(body: Credentials, request: Request) -> Response:
        client = ClientInfo(ip=client_ip(request), user_agent=request.headers.get("user-agent", ""))
        tokens = accounts.login(email=str(body.email), password=body.password, client=client)
        limits.forgive_failed_login(request)
        return json_response(tokens, headers=NO_STORE)

    @router.post(
        "/refresh",
        response_model=TokenPair,
        responses=error_responses(401, 413, 422, 429, 503),
    )
    def refresh(body: RefreshRequest, request: Request) -> Response:
        tokens = accounts.refresh(refresh_token=body.refresh_token)
        return json_response(tokens, headers=NO_STORE)

    @router.post(
        "/password/forgot",
        status_code=202,
        response_model=Message,
        responses=error_responses(413, 422, 429, 503),
    )
    @limits.password_reset
    def forgot_password(body: PasswordForgot, request: Request) -> Response:
        passwords.request_reset(email=str(body.email))
        return json_response({"detail": RESET_REQUESTED}, status_code=202)

    @router.post(
        "/password/reset",
        response_model=Message,
        responses=error_responses(400, 413, 422, 429, 503),
    )
    @hashes_passwords
    def reset_password(body: PasswordReset, request: Request) -> Response:
        passwords.reset(token=body.token, new_password=body.new_password)
        return json_response({"detail": "Password changed; every session has been ended"})

    return router
