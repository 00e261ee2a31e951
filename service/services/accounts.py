"""Accounts and sessions: register, log in, refresh, log out, list and revoke."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from db import repositories as repo
from db.engine import Database
from service.errors import EmailTaken, InvalidCredentials, InvalidRefreshToken, NotFound
from service.logging import get_logger
from sessions.passwords import PasswordHasher
from sessions.store import RefreshToken, RotationResult, SessionInfo, SessionStore
from sessions.tokens import TokenCodec, new_jti

audit = get_logger("audit")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str


class AccountService:
    def __init__(
        self,
        *,
        database: Database,
        sessions: SessionStore,
        tokens: TokenCodec,
        passwords: PasswordHasher,
    ) -> None:
        self._database = database
        self._sessions = sessions
        self._tokens = tokens
        self._passwords = passwords

    def register(self, *, email: str, password: str) -> dict[str, Any]:
        with self._database.session() as db:
            if repo.get_user_by_email(db, email=email) is not None:
                raise EmailTaken()
        # Hashed outside any unit of work: no connection is held while argon2id works.
        password_hash = self._passwords.hash(password)
        try:
            with self._database.session() as db:
                user = repo.create_user(db, email=email, password_hash=password_hash)
        except repo.DuplicateEmailError:
            raise EmailTaken() from None
        audit.info("user_registered", user_id=user.id)
        return {"id": user.id, "email": user.email, "created_at": user.created_at}

    def login(self, *, email: str, password: str, client: ClientInfo) -> dict[str, Any]:
        with self._database.session() as db:
            user = repo.get_user_by_email(db, email=email)
        # Unknown emails are verified against a dummy hash: same work, same answer.
        matches, new_hash = self._passwords.verify(password, user.password_hash if user else None)
        if user is None or not matches:
            audit.warning(
                "login_failed",
                reason="unknown_email" if user is None else "wrong_password",
                user_id=user.id if user else None,
            )
            raise InvalidCredentials()
        if new_hash is not None:
            with self._database.session() as db:
                repo.update_password_hash(db, user_id=user.id, password_hash=new_hash)

        jti, issued_at = new_jti(), int(time.time())
        session_id, refresh = self._sessions.create(
            user_id=user.id, jti=jti, ip=client.ip, user_agent=client.user_agent
        )
        audit.info("session_created", user_id=user.id, session_id=session_id)
        return self._token_pair(user.id, session_id, jti, issued_at, refresh)

    def refresh(self, *, refresh_token: str) -> dict[str, Any]:
        token = RefreshToken.parse(refresh_token)
        if token is None:
            raise InvalidRefreshToken()
        rotation = self._sessions.rotate(token, new_jti=new_jti(), issued_at=int(time.time()))
        if rotation.result is RotationResult.REUSED:
            audit.warning(
                "session_revoked",
                reason="refresh_reuse",
                user_id=token.user_id,
                session_id=token.session_id,
            )
        if rotation.refresh is None:
            raise InvalidRefreshToken()
        event = "session_refreshed"
        if rotation.result is RotationResult.REPEATED:
            event = "session_refresh_repeated"
        audit.info(event, user_id=token.user_id, session_id=token.session_id)
        return self._token_pair(
            token.user_id, token.session_id, rotation.jti, rotation.issued_at, rotation.refresh
        )

    def logout(self, *, user_id: int, session_id: str) -> None:
        self._sessions.revoke(user_id=user_id, session_id=session_id)
        audit.info("session_revoked", reason="logout", user_id=user_id, session_id=session_id)

    def logout_all(self, *, user_id: int) -> int:
        revoked = self._sessions.revoke_all(user_id=user_id)
        audit.info("session_revoked", reason="logout_all", user_id=user_id, count=revoked)
        return revoked

    def list_sessions(self, *, user_id: int, current_session_id: str) -> list[dict[str, Any]]:
        return [
            session_view(info, current=info.id == current_session_id)
            for info in self._sessions.list_for_user(user_id)
        ]

    def revoke_session(self, *, user_id: int, session_id: str) -> None:
        if not self._sessions.revoke(user_id=user_id, session_id=session_id):
            raise NotFound("Session not found")
        audit.info("session_revoked", reason="user_revoke", user_id=user_id, session_id=session_id)

    def _token_pair(
        self, user_id: int, session_id: str, jti: str, issued_at: int, refresh: RefreshToken
    ) -> dict[str, Any]:
        ttl = self._tokens.ttl_seconds
        access_token = self._tokens.issue(
            user_id=user_id, session_id=session_id, jti=jti, issued_at=issued_at
        )
        return {
            "access_token": access_token,
            "refresh_token": str(refresh),
            "token_type": "bearer",
            # What is left of the access token's life: all of it, unless this repeats an
            # earlier rotation.
            "expires_in": max(0, min(ttl, issued_at + ttl - int(time.time()))),
        }


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
