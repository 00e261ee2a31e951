"""Server-side sessions in Redis (key layout in sessions.keys, scripts in sessions.scripts)."""

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from redis.client import Pipeline

from sessions import scripts
from sessions.keys import (
    SESSION_KEY_PATTERN,
    credentials_key,
    index_key,
    owner_key,
    revoked_key,
    session_key,
    spent_key,
)
from sessions.lua import LuaScript
from sessions.redis_client import Client, node_for
from sessions.refresh import RefreshToken, hash_secret


def new_session_id() -> str:
    """128 random bits, URL-safe. Never starting with "-", so that an id pasted on a
    command line (the admin CLI, redis-cli) is not read as an option."""
    while (session_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return session_id


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    user_id: int
    created_at: float
    last_seen_at: float
    absolute_expires_at: float
    idle_expires_at: float
    ip: str
    user_agent: str
    # How the session was made, in order: "password", "totp", "recovery_code", "oidc:<name>".
    auth_methods: tuple[str, ...] = ()

    @property
    def expires_at(self) -> float:
        """When the session ends if it is not used again."""
        return min(self.absolute_expires_at, self.idle_expires_at)


class NotReplicated(Exception):
    """Fewer replicas than REDIS_WAIT_REPLICAS acknowledged a revocation in time: it holds
    on the master, but a failover now could undo it. Nothing is claimed; the caller may
    retry (every revocation can be repeated)."""

    def __init__(self, acknowledged: int, wanted: int) -> None:
        super().__init__(f"{acknowledged} of {wanted} replicas acknowledged the write")


class CredentialsChanged(Exception):
    """The account's password changed (or the account was deleted) after the login read
    it: the login must not start a session."""


@dataclass(frozen=True, slots=True)
class NewSession:
    id: str
    refresh: RefreshToken
    # Sessions of the user ended to keep them within the cap, least recently used first.
    evicted: list[str] = field(default_factory=list)


class RotationResult(Enum):
    ROTATED = "rotated"
    REPEATED = "repeated"  # the token just rotated away, within the grace period
    REUSED = "reused"  # a spent refresh token: the session has been revoked
    INVALID = "invalid"  # unknown session or secret: nothing changed


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a refresh gives: the session's current access `jti` (issued at `issued_at`)
    and refresh token. On REPEATED they are those of the rotation being repeated."""

    result: RotationResult
    jti: str = ""
    issued_at: int = 0
    refresh: RefreshToken | None = None


class SessionStore:
    """Sessions on one Redis client (one node, a Sentinel-managed master or a Cluster).
    Every public method calls Redis under `guard` (the service's circuit breaker).

    Every write that ends or replaces a session (a revocation, a rotation, a login that
    may evict one) is answered only once `wait_replicas` replicas acknowledged it (Redis
    WAIT, on the same connection, at most `wait_timeout_ms`); else NotReplicated."""

    def __init__(
        self,
        redis: Client,
        *,
        session_ttl_seconds: int,
        idle_timeout_seconds: int,
        refresh_grace_seconds: float = 10,
        max_sessions_per_user: int = 10,
        guard: Callable[[], AbstractContextManager[None]] = nullcontext,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
        clock: Callable[[], float] = time.time,
    ):
        # The time the store believes it is (tests pass their own to skip ahead).
        self._clock = clock
        self._redis = redis
        self._guard = guard
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.session_ttl_seconds = session_ttl_seconds
        self.idle_timeout_seconds = idle_timeout_seconds
        self.refresh_grace_seconds = refresh_grace_seconds
        self.max_sessions_per_user = max_sessions_per_user
        self.touch_interval_seconds = min(60.0, idle_timeout_seconds / 10)
        # Run on its own on every request: redis-py's Script (EVALSHA, loaded when missing).
        self._authenticate = redis.register_script(scripts.AUTHENTICATE)
        self._rotate = LuaScript(scripts.ROTATE)
        self._create = LuaScript(scripts.CREATE)
        self._revoke_all = LuaScript(scripts.REVOKE_ALL)
        self._revoke_one = LuaScript(scripts.REVOKE_ONE)

    def create(
        self,
        *,
        user_id: int,
        credentials_version: int,
        jti: str,
        ip: str,
        user_agent: str,
        auth_methods: Sequence[str] = ("password",),
    ) -> NewSession:
        """Start a session for a login that verified the credentials of
        `credentials_version`, by `auth_methods`.

        Raises CredentialsChanged when a password change, reset or account deletion
        happened since; keeps the user within `max_sessions_per_user` by ending the least
        recently used sessions."""
        session_id = new_session_id()
        refresh = RefreshToken.new(user_id, session_id)
        now = self._clock()
        absolute_end = now + self.session_ttl_seconds
        ttl_ms = int(min(self.session_ttl_seconds, self.idle_timeout_seconds) * 1000)
        fields: dict[str, str | float | int] = {
            "user_id": user_id,
            "jti": jti,
            "jti_issued_at": int(now),
            "refresh_hash": hash_secret(refresh.secret),
            "created_at": now,
            "last_seen_at": now,
            "expires_at": absolute_end,
            "ip": ip,
            "user_agent": user_agent[:512],
            "auth_methods": " ".join(auth_methods),
        }
        keys = [index_key(user_id), credentials_key(user_id), session_key(user_id, session_id)]
        args = [
            session_key(user_id, ""),
            spent_key(user_id, ""),
            session_id,
            now,
            self.max_sessions_per_user,
            credentials_version,
            ttl_ms,
            absolute_end,
            *(item for pair in fields.items() for item in pair),
        ]
        # First the owner (another Cluster slot): an admin can find every live session.
        with self._guard():
            self._redis.set(owner_key(session_id), user_id, pxat=int(absolute_end * 1000))
        [outcome] = self._write(user_id, lambda pipe: self._create(pipe, keys, args))
        status, *evicted = (_text(part) for part in outcome)
        if status == "stale":
            with self._guard():
                self._redis.delete(owner_key(session_id))
            raise CredentialsChanged()
        return NewSession(session_id, refresh, evicted)

    def authenticate(self, *, user_id: int, session_id: str, jti: str) -> bool:
        """True when the session is live and its current access token is `jti`."""
        args: list[str | float] = [
            jti,
            self._clock(),
            self.idle_timeout_seconds,
            self.touch_interval_seconds,
        ]
        with self._guard():
            return bool(self._authenticate(keys=[session_key(user_id, session_id)], args=args) == 1)

    def rotate(self, token: RefreshToken, *, new_jti: str, issued_at: int) -> Rotation:
        """Swap the session's refresh token and access `jti` for new ones.

        The token just rotated away, presented again within `refresh_grace_seconds`, gets
        the same successor again; any older spent token is a replay and the session dies.
        """
        salt = secrets.token_urlsafe(16)
        successor = token.successor(salt)
        keys = [
            session_key(token.user_id, token.session_id),
            spent_key(token.user_id, token.session_id),
            index_key(token.user_id),
        ]
        args: list[str | float] = [
            hash_secret(token.secret),
            new_jti,
            hash_secret(successor.secret),
            self._clock(),
            self.idle_timeout_seconds,
            token.session_id,
            self.refresh_grace_seconds,
            salt,
            issued_at,
        ]
        [answer] = self._write(token.user_id, lambda pipe: self._rotate(pipe, keys, args))
        outcome, *given = (_text(part) for part in answer)
        result = RotationResult(outcome)
        if result is RotationResult.ROTATED:
            return Rotation(result, jti=new_jti, issued_at=issued_at, refresh=successor)
        if result is RotationResult.REPEATED:
            jti, repeated_issued_at, repeated_salt = given
            return Rotation(
                result,
                jti=jti,
                issued_at=int(repeated_issued_at),
                refresh=token.successor(repeated_salt),
            )
        return Rotation(result)

    def revoke(self, *, user_id: int, session_id: str) -> bool:
        """End one session; True when it was live."""
        keys = [
            session_key(user_id, session_id),
            spent_key(user_id, session_id),
            index_key(user_id),
        ]
        [live] = self._write(user_id, lambda pipe: self._revoke_one(pipe, keys, [session_id]))
        with self._guard():
            self._redis.delete(owner_key(session_id))
        return bool(live)

    def revoke_all(
        self,
        *,
        user_id: int,
        keep_session_id: str = "",
        credentials_version: int | None = None,
    ) -> int:
        """End every session of a user (but `keep_session_id`); return how many were live.

        With `credentials_version` (after a password change or reset, or the account's
        deletion), a login that verified an older password starts no session afterwards.
        """
        keys = [index_key(user_id), credentials_key(user_id)]
        args = [
            session_key(user_id, ""),
            spent_key(user_id, ""),
            keep_session_id,
            "" if credentials_version is None else credentials_version,
            self.session_ttl_seconds,
        ]
        [ended] = self._write(user_id, lambda pipe: self._revoke_all(pipe, keys, args))
        return int(ended)

    def _write(self, user_id: int, queue: Callable[[Pipeline], Any]) -> list[Any]:
        """Run what `queue` adds to a pipeline, in one round trip to the node that holds
        the user's keys, and return its answers. With `wait_replicas`, the pipeline also
        writes the user's `revoked` marker (so that a repeated revocation, which may find
        nothing left to delete, still has a write to wait for: replication keeps order)
        and then WAITs; fewer acknowledgements than asked raise NotReplicated."""
        node = node_for(self._redis, index_key(user_id))
        with self._guard(), node.pipeline(transaction=False) as pipe:
            queue(pipe)
            if self.wait_replicas:
                pipe.set(revoked_key(user_id), self._clock(), ex=self.session_ttl_seconds)
                pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)  # type: ignore[no-untyped-call]
            answers: list[Any] = pipe.execute()
        if not self.wait_replicas:
            return answers
        acknowledged = int(answers[-1])
        if acknowledged < self.wait_replicas:
            raise NotReplicated(acknowledged, self.wait_replicas)
        return answers[:-2]

    def list_for_user(self, user_id: int) -> list[SessionInfo]:
        """The user's live sessions, newest first; index entries of expired ones are pruned."""
        with self._guard():
            session_ids = self._session_ids(user_id)
            loaded = self._load(user_id, session_ids)
            sessions, gone = [], []
            for session_id, info in zip(session_ids, loaded, strict=True):
                if info is None:
                    gone.append(session_id)
                else:
                    sessions.append(info)
            if gone:
                self._redis.zrem(index_key(user_id), *gone)
        return sorted(sessions, key=lambda s: s.created_at, reverse=True)

    def iter_all(self, batch_size: int = 500) -> Iterator[SessionInfo]:
        """Every live session, found with SCAN (never KEYS)."""
        keys_found = self._redis.scan_iter(SESSION_KEY_PATTERN, count=batch_size)
        for keys in _batched(keys_found, batch_size):
            with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                for key, fields in zip(keys, pipe.execute(), strict=True):
                    info = self._to_info(key.decode().rsplit(":", 1)[1], fields)
                    if info is not None:
                        yield info

    def find(self, session_id: str) -> SessionInfo | None:
        """A live session by its id alone: its owner is recorded when it starts."""
        with self._guard():
            owner = self._redis.get(owner_key(session_id))
            if owner is None:
                return None
            fields = self._redis.hgetall(session_key(int(owner), session_id))
        return self._to_info(session_id, fields)

    def _session_ids(self, user_id: int) -> list[str]:
        ids: list[bytes] = self._redis.zrange(index_key(user_id), 0, -1)  # type: ignore[assignment]
        return [sid.decode() for sid in ids]

    def _load(self, user_id: int, session_ids: list[str]) -> list[SessionInfo | None]:
        with self._redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.hgetall(session_key(user_id, session_id))
            rows = pipe.execute()
        return [self._to_info(sid, row) for sid, row in zip(session_ids, rows, strict=True)]

    def _to_info(self, session_id: str, fields: Any) -> SessionInfo | None:
        if not fields or b"jti" not in fields:
            return None
        last_seen = float(fields[b"last_seen_at"])
        absolute_end = float(fields[b"expires_at"])
        idle_end = last_seen + self.idle_timeout_seconds
        if self._clock() >= min(absolute_end, idle_end):
            return None
        return SessionInfo(
            id=session_id,
            user_id=int(fields[b"user_id"]),
            created_at=float(fields[b"created_at"]),
            last_seen_at=last_seen,
            absolute_expires_at=absolute_end,
            idle_expires_at=idle_end,
            ip=fields.get(b"ip", b"").decode(),
            user_agent=fields.get(b"user_agent", b"").decode(errors="replace"),
            auth_methods=tuple(fields.get(b"auth_methods", b"").decode().split()),
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _batched(iterable: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
