from typing import Annotated, Any

from fastapi import APIRouter, Path

from service.deps import CurrentSession
from service.schemas.common import error_responses
from service.schemas.sessions import SessionList, SessionRevoked
from service.services import accounts

router = APIRouter(prefix="/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("", response_model=SessionList, responses=error_responses(401, 429, 503))
def list_sessions(principal: CurrentSession) -> Any:
    items = accounts.list_sessions(
        principal.runtime,
        user_id=principal.user_id,
        current_session_id=principal.session_id,
    )
    return {"items": items}


@router.delete(
    "/{session_id}",
    response_model=SessionRevoked,
    responses=error_responses(401, 404, 422, 429, 503),
)
def revoke_session(session_id: SessionId, principal: CurrentSession) -> Any:
    accounts.revoke_session(principal.runtime, user_id=principal.user_id, session_id=session_id)
    return {"id": session_id, "revoked": True}
