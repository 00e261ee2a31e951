"""Accounts and sessions: register, log in, refresh, log out, list and revoke."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from db import repositories as repo
from service.errors import EmailTaken, InvalidCredentials, InvalidRefreshToken, NotFound
from service.logging import get_logger
from service.runtime import Runtime
from sessions.store import RefreshToken, RotationResult, SessionInfo
from sessions.tokens import new_jti

audit = get_logger("audit")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str


def register(runtime: Runtime, *, email: str, password: str) -> dict[str, Any]:
    database = runtime.database
    with database.statement() as db:
        if repo.get_user_id_by_email(db, email=email) is not None:
            raise EmailTaken()
    # Hash outside any transaction: a connection is not held for the ~50 ms it takes.
    password_hash = runtime.passwords.hash(password)
    try:
        with database.statement() as db:
            user = repo.create_user(db, email=email, password_hash=password_hash)
    except repo.DuplicateEmailError:
        raise EmailTaken() from None
    audit.info("user_registered", user_id=user["id"])
    return user


def login(runtime: Runtime, *, email: str, password: str, client: ClientInfo) -> dict[str, Any]:
    with runtime.database.statement() as db:
        user = repo.get_user_credentials(db, email=email)
    # Unknown emails are verified against a dummy hash: same work, same answer.
    matches, new_hash = runtime.passwords.verify(password, user["password_hash"] if user else None)
    if user is None or not matches:
        audit.warning(
            "login_failed",
            reason="unknown_email" if user is None else "wrong_password",
            user_id=user["id"] if user else None,
        )
        raise InvalidCredentials()
    if new_hash is not None:
        with runtime.database.statement() as db:
            repo.update_password_hash(db, user_id=user["id"], password_hash=new_hash)

    jti = new_jti()
    session_id, refresh = runtime.sessions.create(
        user_id=user["id"], jti=jti, ip=client.ip, user_agent=client.user_agent
    )
    audit.info("session_created", user_id=user["id"], session_id=session_id)
    return _token_pair(runtime, user_id=user["id"], session_id=session_id, jti=jti, refresh=refresh)


def refresh(runtime: Runtime, *, refresh_token: str) -> dict[str, Any]:
    token = RefreshToken.parse(refresh_token)
    if token is None:
        raise InvalidRefreshToken()
    jti = new_jti()
    result, new_refresh = runtime.sessions.rotate(token, new_jti=jti)
    if result is RotationResult.REUSED:
        audit.warning(
            "session_revoked",
            reason="refresh_reuse",
            user_id=token.user_id,
            session_id=token.session_id,
        )
        raise InvalidRefreshToken()
    if result is RotationResult.INVALID:
        raise InvalidRefreshToken()
    audit.info("session_refreshed", user_id=token.user_id, session_id=token.session_id)
    return _token_pair(
        runtime,
        user_id=token.user_id,
        session_id=token.session_id,
        jti=jti,
        refresh=new_refresh,
    )


def logout(runtime: Runtime, *, user_id: int, session_id: str) -> None:
    runtime.sessions.revoke(user_id=user_id, session_id=session_id)
    audit.info("session_revoked", reason="logout", user_id=user_id, session_id=session_id)


def logout_all(runtime: Runtime, *, user_id: int) -> int:
    revoked = runtime.sessions.revoke_all(user_id=user_id)
    audit.info("session_revoked", reason="logout_all", user_id=user_id, count=revoked)
    return revoked


def list_sessions(
    runtime: Runtime, *, user_id: int, current_session_id: str
) -> list[dict[str, Any]]:
    return [
        session_view(info, current=info.id == current_session_id)
        for info in runtime.sessions.list_for_user(user_id)
    ]


def revoke_session(runtime: Runtime, *, user_id: int, session_id: str) -> None:
    if not runtime.sessions.revoke(user_id=user_id, session_id=session_id):
        raise NotFound("Session not found")
    audit.info("session_revoked", reason="user_revoke", user_id=user_id, session_id=session_id)


def session_view(info: SessionInfo, *, current: bool) -> dict[str, Any]:
    return {
        "id": info.id,
        "created_at": _utc(info.created_at),
        "last_seen_at": _utc(info.last_seen_at),
        "expires_at": _utc(info.expires_at),
        "ip": info.ip,
        "user_agent": info.user_agent,
        "current": current,
    }


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _token_pair(
    runtime: Runtime, *, user_id: int, session_id: str, jti: str, refresh: RefreshToken
) -> dict[str, Any]:
    return {
        "access_token": runtime.tokens.issue(user_id=user_id, session_id=session_id, jti=jti),
        "refresh_token": str(refresh),
        "token_type": "bearer",
        "expires_in": runtime.tokens.ttl_seconds,
    }
