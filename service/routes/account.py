"""The caller's own account and sessions as a whole: log out here or everywhere."""

from fastapi import APIRouter, Request, Response

from service.deps import CurrentPrincipal
from service.responses import json_response
from service.runtime import Runtime
from service.schemas.auth import Message
from service.schemas.common import error_responses
from service.schemas.sessions import RevokedCount


def build_router(runtime: Runtime) -> APIRouter:
    accounts = runtime.accounts
    router = APIRouter(tags=["auth"], route_class=runtime.route_class)

    @router.post("/logout", response_model=Message, responses=error_responses(401, 429, 503))
    def logout(principal: CurrentPrincipal, request: Request) -> Response:
        accounts.logout(user_id=principal.user_id, session_id=principal.session_id)
        return json_response({"detail": "Logged out"})

    @router.post(
        "/logout/all", response_model=RevokedCount, responses=error_responses(401, 429, 503)
    )
    def logout_all(principal: CurrentPrincipal, request: Request) -> Response:
        return json_response({"revoked": accounts.logout_all(user_id=principal.user_id)})

    return router
