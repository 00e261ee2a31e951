"""Server-side sessions in Redis.

Layout (every key of a user shares the hash tag `{u:<id>}`, so multi-key changes
stay in one Redis Cluster slot):
- `session:{u:<uid>}:<sid>`  hash: user id, current access `jti`, refresh-token hash,
  created / last-seen / absolute-expiry times (epoch seconds), ip, user agent.
  Its TTL is the earlier of the absolute end and last use + idle timeout.
- `spent:{u:<uid>}:<sid>`    set of refresh-token hashes already rotated away.
- `sessions:{u:<uid>}`       sorted set of the user's session ids, scored by absolute end.
"""

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from sessions.lua import LuaScript

SESSION_KEY_PATTERN = "session:*"


def session_key(user_id: int, session_id: str) -> str:
    return f"session:{{u:{user_id}}}:{session_id}"


def spent_key(user_id: int, session_id: str) -> str:
    return f"spent:{{u:{user_id}}}:{session_id}"


def index_key(user_id: int) -> str:
    return f"sessions:{{u:{user_id}}}"


def new_session_id() -> str:
    """128 random bits, URL-safe. Never starting with "-", so that an id pasted on a
    command line (the admin CLI, redis-cli) is not read as an option."""
    while (session_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return session_id


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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

    @property
    def expires_at(self) -> float:
        """When the session ends if it is not used again."""
        return min(self.absolute_expires_at, self.idle_expires_at)


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
    refresh: "RefreshToken | None" = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """Opaque to clients: `<user id>.<session id>.<secret>`; only the secret's hash is stored."""

    user_id: int
    session_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.user_id}.{self.session_id}.{self.secret}"

    @classmethod
    def new(cls, user_id: int, session_id: str) -> "RefreshToken":
        return cls(user_id, session_id, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, value: str) -> "RefreshToken | None":
        """The token's parts, or None for anything not of the form this store issues."""
        match = _REFRESH_TOKEN.fullmatch(value)
        if match is None:
            return None
        return cls(int(match["user_id"]), match["session_id"], match["secret"])

    def successor(self, salt: str) -> "RefreshToken":
        """The token a rotation with `salt` gives for this one. Derived rather than stored,
        so that a retry within the grace period gets the same token again while Redis
        keeps only hashes: without the presented secret, the salt alone yields nothing."""
        digest = hmac.new(salt.encode(), self.secret.encode(), hashlib.sha256).digest()
        secret = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return RefreshToken(self.user_id, self.session_id, secret)


# ASCII only: str.isdigit() and \d accept digits such as "²" that int() refuses.
_REFRESH_TOKEN = re.compile(
    r"(?P<user_id>[1-9][0-9]{0,18})\.(?P<session_id>[A-Za-z0-9_-]{1,64})"
    r"\.(?P<secret>[A-Za-z0-9_-]{1,128})",
    re.ASCII,
)


# KEYS: session. ARGV: jti, now, idle timeout, last-seen write interval.
# Returns 1 when the session is live and holds this jti; refreshes last-seen (and with it
# the idle TTL) at most once per interval so most requests only read.
_AUTHENTICATE = """
local v = redis.call('HMGET', KEYS[1], 'jti', 'last_seen_at', 'expires_at')
if not v[1] or v[1] ~= ARGV[1] then return 0 end
local now, idle = tonumber(ARGV[2]), tonumber(ARGV[3])
local last, abs_end = tonumber(v[2]), tonumber(v[3])
if now >= abs_end or now >= last + idle then
  redis.call('DEL', KEYS[1])
  return 0
end
if now - last >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], math.ceil((math.min(abs_end, now + idle) - now) * 1000))
end
return 1
"""

# KEYS: session, spent set, user index.
# ARGV: presented hash, new jti, new hash, now, idle timeout, session id, grace seconds,
#       new rotation salt, new jti's issued-at (whole seconds).
# The current refresh token rotates; the one just rotated away, presented again within the
# grace period (parallel tabs, a retry after a lost response), gets what that rotation
# gave; any other spent token is a replay and ends the session.
_ROTATE = """
local v = redis.call('HMGET', KEYS[1], 'refresh_hash', 'expires_at', 'last_seen_at',
  'prev_refresh_hash', 'rotated_at', 'jti', 'jti_issued_at', 'rotation_salt')
if not v[1] then return {'invalid'} end
local now, idle = tonumber(ARGV[4]), tonumber(ARGV[5])
local abs_end = tonumber(v[2])
if now >= abs_end or now >= tonumber(v[3]) + idle then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[6])
  return {'invalid'}
end
if v[1] == ARGV[1] then
  local ttl = math.ceil((math.min(abs_end, now + idle) - now) * 1000)
  redis.call('HSET', KEYS[1], 'jti', ARGV[2], 'refresh_hash', ARGV[3], 'last_seen_at', ARGV[4],
    'prev_refresh_hash', ARGV[1], 'rotated_at', ARGV[4], 'rotation_salt', ARGV[8],
    'jti_issued_at', ARGV[9])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIREAT', KEYS[2], math.ceil(abs_end * 1000))
  return {'rotated'}
end
if v[4] == ARGV[1] and now - tonumber(v[5]) <= tonumber(ARGV[7]) then
  return {'repeated', v[6], v[7], v[8]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[6])
  return {'reused'}
end
return {'invalid'}
"""


class SessionStore:
    """Sessions on a Redis client (admin and write paths) and, for the per-request check
    made on the event loop, an asyncio client on the same server."""

    def __init__(
        self,
        redis: Redis,
        *,
        session_ttl_seconds: int,
        idle_timeout_seconds: int,
        refresh_grace_seconds: float = 10,
        async_redis: AsyncRedis | None = None,
    ):
        self._redis = redis
        self._async_redis = async_redis
        self.refresh_grace_seconds = refresh_grace_seconds
        self.session_ttl_seconds = session_ttl_seconds
        self.idle_timeout_seconds = idle_timeout_seconds
        self.touch_interval_seconds = min(60.0, idle_timeout_seconds / 10)
        self._authenticate = LuaScript(_AUTHENTICATE)
        self._rotate = LuaScript(_ROTATE)

    def create(
        self, *, user_id: int, jti: str, ip: str, user_agent: str
    ) -> tuple[str, RefreshToken]:
        """Start a session; return its id and its first refresh token."""
        session_id = new_session_id()
        refresh = RefreshToken.new(user_id, session_id)
        now = time.time()
        absolute_end = now + self.session_ttl_seconds
        ttl_ms = int(min(self.session_ttl_seconds, self.idle_timeout_seconds) * 1000)
        key, index = session_key(user_id, session_id), index_key(user_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "user_id": user_id,
                    "jti": jti,
                    "refresh_hash": hash_secret(refresh.secret),
                    "created_at": now,
                    "last_seen_at": now,
                    "expires_at": absolute_end,
                    "ip": ip,
                    "user_agent": user_agent[:512],
                },
            )
            pipe.pexpire(key, ttl_ms)
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.zadd(index, {session_id: absolute_end})
            pipe.expireat(index, int(absolute_end) + 1, gt=True)
            pipe.expireat(index, int(absolute_end) + 1, nx=True)
            pipe.execute()
        return session_id, refresh

    def authenticate(self, *, user_id: int, session_id: str, jti: str) -> bool:
        """True when the session is live and its current access token is `jti`."""
        keys, args = self._authenticate_call(user_id, session_id, jti)
        return bool(self._authenticate(self._redis, keys, args) == 1)

    async def authenticate_async(self, *, user_id: int, session_id: str, jti: str) -> bool:
        """`authenticate` on the asyncio client: no thread is held while Redis answers."""
        assert self._async_redis is not None, "SessionStore was built without async_redis"
        keys, args = self._authenticate_call(user_id, session_id, jti)
        return bool(await self._authenticate(self._async_redis, keys, args) == 1)

    def _authenticate_call(
        self, user_id: int, session_id: str, jti: str
    ) -> tuple[list[str], list[str | float]]:
        args: list[str | float] = [
            jti,
            time.time(),
            self.idle_timeout_seconds,
            self.touch_interval_seconds,
        ]
        return [session_key(user_id, session_id)], args

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
            time.time(),
            self.idle_timeout_seconds,
            token.session_id,
            self.refresh_grace_seconds,
            salt,
            issued_at,
        ]
        outcome, *given = (_text(part) for part in self._rotate(self._redis, keys, args))
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
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(session_key(user_id, session_id))
            pipe.delete(spent_key(user_id, session_id))
            pipe.zrem(index_key(user_id), session_id)
            deleted, _, _ = pipe.execute()
        return bool(deleted)

    def revoke_all(self, *, user_id: int) -> int:
        """Revoke every session of a user; return how many were live."""
        session_ids = self._session_ids(user_id)
        if not session_ids:
            return 0
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(session_key(user_id, sid) for sid in session_ids))
            pipe.delete(*(spent_key(user_id, sid) for sid in session_ids))
            pipe.zrem(index_key(user_id), *session_ids)
            live, _, _ = pipe.execute()
        return int(live)

    def list_for_user(self, user_id: int) -> list[SessionInfo]:
        """The user's live sessions, newest first; index entries of expired ones are pruned."""
        index = index_key(user_id)
        session_ids = self._session_ids(user_id)
        sessions, gone = [], []
        for session_id, info in zip(session_ids, self._load(user_id, session_ids), strict=True):
            if info is None:
                gone.append(session_id)
            else:
                sessions.append(info)
        if gone:
            self._redis.zrem(index, *gone)
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
        """Look a session up by id alone (admin use: scans)."""
        for key in self._redis.scan_iter(f"session:*:{_escape_glob(session_id)}", count=1000):
            info = self._to_info(session_id, self._redis.hgetall(key))
            if info is not None:
                return info
        return None

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
        if time.time() >= min(absolute_end, idle_end):
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
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _escape_glob(value: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in value)


def _batched(iterable: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
