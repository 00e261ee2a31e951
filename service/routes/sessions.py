"""The caller's sessions, one by one."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from service.deps import CurrentPrincipal
from service.responses import json_response
from service.runtime import Runtime
from service.schemas.common import error_responses
from service.schemas.sessions import SessionList, SessionRevoked

SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def build_router(runtime: Runtime) -> APIRouter:
    own_sessions = runtime.session_service
    router = APIRouter(prefix="/sessions", tags=["sessions"], route_class=runtime.route_class)

    @router.get("", response_model=SessionList, responses=error_responses(401, 429, 503))
    def list_sessions(principal: CurrentPrincipal, request: Request) -> Response:
        """The caller's live sessions, newest first; `current` marks this one."""
        items = own_sessions.list(
            user_id=principal.user_id, current_session_id=principal.session_id
        )
        return json_response({"items": items})

    @router.delete(
        "/{session_id}",
        response_model=SessionRevoked,
        responses=error_responses(401, 404, 422, 429, 503),
    )
    def revoke_session(
        session_id: SessionId, principal: CurrentPrincipal, request: Request
    ) -> Response:
        """End one of the caller's sessions (another device, say). Another user's session,
        or one that has ended, is a 404."""
        own_sessions.revoke(user_id=principal.user_id, session_id=session_id)
        return json_response({"id": session_id, "revoked": True})

    return router
