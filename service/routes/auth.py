"""The public account routes: register, log in, refresh. No token needed."""

from fastapi import APIRouter, Request, Response

from service.ratelimit import client_ip
from service.responses import NO_STORE, json_response
from service.runtime import Runtime
from service.schemas.auth import Credentials, RefreshRequest, TokenPair, UserRead
from service.schemas.common import error_responses
from service.services.accounts import ClientInfo
from service.threads import hashes_passwords


def build_router(runtime: Runtime) -> APIRouter:
    accounts, limits = runtime.accounts, runtime.limits
    router = APIRouter(tags=["auth"], route_class=runtime.route_class)

    @router.post(
        "/register",
        status_code=201,
        response_model=UserRead,
        responses=error_responses(409, 413, 422, 429, 503),
    )
    @limits.registration
    @hashes_passwords
    def register(body: Credentials, request: Request) -> Response:
        user = accounts.register(email=str(body.email), password=body.password)
        return json_response(user, status_code=201)

    @router.post(
        "/login",
        response_model=TokenPair,
        responses=error_responses(401, 413, 422, 429, 503),
    )
    @limits.login
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

    return router
