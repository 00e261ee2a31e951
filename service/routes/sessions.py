from typing import Annotated

from fastapi import APIRouter, Path, Response

from service.deps import BEARER_IN_OPENAPI, Principal, authenticated
from service.responses import json_response
from service.schemas.common import error_responses
from service.schemas.sessions import SessionList, SessionRevoked
from service.services import accounts

router = APIRouter(prefix="/sessions", tags=["sessions"], dependencies=BEARER_IN_OPENAPI)
SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("", response_model=SessionList, responses=error_responses(401, 429, 503))
@authenticated
def list_sessions(principal: Principal) -> Response:
    items = accounts.list_sessions(
        principal.runtime,
        user_id=principal.user_id,
        current_session_id=principal.session_id,
    )
    return json_response({"items": items})


@router.delete(
    "/{session_id}",
    response_model=SessionRevoked,
    responses=error_responses(401, 404, 422, 429, 503),
)
@authenticated
def revoke_session(session_id: SessionId, principal: Principal) -> Response:
    accounts.revoke_session(principal.runtime, user_id=principal.user_id, session_id=session_id)
    return json_response({"id": session_id, "revoked": True})
