"""The caller's own sessions: log out here or everywhere, list them, end one."""

from datetime import UTC, datetime
from typing import Any

from service.audit import sessions_revoked
from service.errors import NotFound
from sessions.store import SessionInfo, SessionStore


class SessionService:
    def __init__(self, *, sessions: SessionStore) -> None:
        self._sessions = sessions

    def logout(self, *, user_id: int, session_id: str) -> None:
        self._sessions.revoke(user_id=user_id, session_id=session_id)
        sessions_revoked("logout", user_id=user_id, session_id=session_id)

    def logout_all(self, *, user_id: int) -> int:
        revoked = self._sessions.revoke_all(user_id=user_id)
        sessions_revoked("logout_all", user_id=user_id, count=revoked)
        return revoked

    def list(self, *, user_id: int, current_session_id: str) -> list[dict[str, Any]]:
        return [
            session_view(info, current=info.id == current_session_id)
            for info in self._sessions.list_for_user(user_id)
        ]

    def revoke(self, *, user_id: int, session_id: str) -> None:
        if not self._sessions.revoke(user_id=user_id, session_id=session_id):
            raise NotFound("Session not found")
        sessions_revoked("user_revoke", user_id=user_id, session_id=session_id)


def session_view(info: SessionInfo, *, current: bool) -> dict[str, Any]:
    return {
        "id": info.id,
        "created_at": _utc(info.created_at),
        "last_seen_at": _utc(info.last_seen_at),
        "expires_at": _utc(info.expires_at),
        "ip": info.ip,
        "user_agent": info.user_agent,
        "auth_methods": list(info.auth_methods),
        "current": current,
    }


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
