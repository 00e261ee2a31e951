from datetime import datetime

from pydantic import Field

from service.schemas.common import ResponseBody, examples

EXAMPLE_SESSION = {
    "id": "3kLq0wVY2d5nq5jv0Pq1ZA",
    "created_at": "2026-12-01T09:30:00Z",
    "last_seen_at": "2026-12-01T10:12:41Z",
    "expires_at": "2026-12-02T10:12:41Z",
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    "auth_methods": ["password", "totp"],
    "current": True,
}


class SessionRead(ResponseBody):
    """One live session of the caller's (a login, on some device)."""

    model_config = examples(EXAMPLE_SESSION)
    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime = Field(
        description="When the session ends if unused: the earlier of its absolute end and "
        "last use plus the idle timeout"
    )
    ip: str = Field(description="The client's address at login")
    user_agent: str = Field(description="The client's User-Agent at login")
    auth_methods: list[str] = Field(
        description="How the session was made, in order: `password`, `totp`, "
        "`recovery_code`, `oidc:<provider>`"
    )
    current: bool = Field(description="True for the session of the token in this request")


class SessionList(ResponseBody):
    """The caller's live sessions, newest first."""

    model_config = examples({"items": [EXAMPLE_SESSION]})
    items: list[SessionRead]


class SessionRevoked(ResponseBody):
    """The session has ended: its tokens are refused from the next request on."""

    model_config = examples({"id": "3kLq0wVY2d5nq5jv0Pq1ZA", "revoked": True})
    id: str
    revoked: bool = True


class RevokedCount(ResponseBody):
    """How many sessions ended."""

    model_config = examples({"revoked": 3})
    revoked: int
