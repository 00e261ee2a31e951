"""The caller's sessions, one by one."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from service.deps import Caller, OwnSessions
from service.edge.step3_route import EdgeRoute
from service.responses import json_response
from service.schemas.common import error_responses
from service.schemas.sessions import SessionList, SessionRevoked

SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
router = APIRouter(prefix="/sessions", tags=["sessions"], route_class=EdgeRoute)


@router.get("", response_model=SessionList, responses=error_responses(401, 429, 503))
def list_sessions(caller: Caller, sessions: OwnSessions) -> Response:
    """The caller's live sessions, newest first; `current` marks this one."""
    items = sessions.list(user_id=caller.user_id, current_session_id=caller.session_id)
    return json_response({"items": items})


@router.delete(
    "/{session_id}",
    response_model=SessionRevoked,
    responses=error_responses(401, 404, 422, 429, 503),
)
def revoke_session(session_id: SessionId, caller: Caller, sessions: OwnSessions) -> Response:
    """End one of the caller's sessions (another device, say). Another user's session,
    or one that has ended, is a 404."""
    sessions.revoke(user_id=caller.user_id, session_id=session_id)
    return json_response({"id": session_id, "revoked": True})
