"""The caller's sessions, one by one."""

import re
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from service.deps import Caller, OwnSessions
from service.edge.route import EdgeRoute, declare
from service.responses import json_response
from service.schemas.common import Documented, error_responses
from service.schemas.sessions import SessionList, SessionRevoked

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _session_id(value: str) -> str:
    if not _SESSION_ID.fullmatch(value):
        raise PydanticCustomError(
            "string_pattern_mismatch", "A session id has only letters, digits, '-' and '_'"
        )
    return value


# The rule is in the schema as a pattern, and in words in the 422.
SessionId = Annotated[
    str,
    Path(min_length=1, max_length=64),
    AfterValidator(_session_id),
    Documented({"pattern": _SESSION_ID.pattern.join("^$")}),
]
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
@declare(limits="revocation")
def revoke_session(session_id: SessionId, caller: Caller, sessions: OwnSessions) -> Response:
    """End one of the caller's sessions (another device, say). Another user's session,
    or one that has ended, is a 404. Counted against `REVOKE_RATE_LIMIT` per session, not
    the budget."""
    sessions.revoke(user_id=caller.user_id, session_id=session_id)
    return json_response({"id": session_id, "revoked": True})
