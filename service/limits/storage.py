"""The `limits` storage SlowAPI counts in: limits' own Redis storage with two changes, each
saving a Redis round trip on every request. This module is the one place where rate
limiting and the session check meet.

1. A hit answers with its window's count and time to live in one script, and the storage
   remembers that window by its key, so the reads that follow it for the X-RateLimit-*
   headers (`get`, `get_expiry`) are answered without asking Redis again.
2. A budget key made by `session_budget_key` names a session as well as its user. The hit
   on it runs the session store's live-session check first, in the same script (both keys
   carry the user's hash tag, so they share a Redis Cluster slot), and counts the request
   against the user only when the session is live and holds the token's `jti`. Otherwise
   nothing is counted and `SessionNotLive` is raised, so that the caller can charge the
   client IP instead: a dead token never spends its owner's budget. SlowAPI's Limiter still
   makes every decision: it compares the count with the limit and raises the 429.

Every call to Redis runs under `guard` (the service's circuit breaker for Redis), on the
service's own client (one pool and one breaker with the session store), whatever the
topology: `limits`' own storage for one node, for Sentinel and for Cluster, each given that
client instead of building one of its own (and reading nothing from replicas: a counter
there may lag).
"""

import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import redis
from limits.storage import RedisClusterStorage, RedisSentinelStorage, RedisStorage
from limits.storage.base import Storage

from sessions.keys import user_tag
from sessions.redis_client import Client, Topology
from sessions.scripts import LIVE_SESSION_FUNCTION
from sessions.store import SessionStore
from sessions.tokens import AccessClaims

# KEYS: the counter, and (optionally) the session that must be live for it to count.
# ARGV: window seconds, amount, then the live-session check's own four arguments.
# Returns {count, ttl in ms}, or {-1, 0} when the session is not live (nothing counted).
COUNT = (
    LIVE_SESSION_FUNCTION
    + """
if #KEYS == 2 and live_session(KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]) == 0 then
  return {-1, 0}
end
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1]) * 1000
end
return {current, ttl}
"""
)
# How a budget key names its session: `user:{u:<id>}~<session id>.<jti>`. Only the part
# before `~` names the counter; the rest is the check. Ids and jtis are URL-safe base64.
_SESSION_MARK = "~"
_SESSION_PART = re.compile(r"~(?P<sid>[A-Za-z0-9_-]{1,64})\.(?P<jti>[A-Za-z0-9_-]{1,64})(?=/)")
_USER_TAG = re.compile(r"\{u:(?P<uid>[1-9][0-9]{0,18})\}")
REMEMBERED_WINDOWS = 1024


class SessionNotLive(Exception):
    """The budget key's session has ended (or never held that token): nothing was counted."""


def session_budget_key(claims: AccessClaims) -> str:
    """The budget key of a verified token whose session is yet to be found live."""
    return f"user:{user_tag(claims.user_id)}{_SESSION_MARK}{claims.session_id}.{claims.jti}"


def user_budget_key(user_id: int) -> str:
    """The key the user's budget is counted under (what `session_budget_key` counts as)."""
    return f"user:{user_tag(user_id)}"


class _ServiceStorage(RedisStorage):
    """What the three storages below add to `limits`' own (see the module's docstring)."""

    def __init__(
        self,
        uri: str,
        *,
        client: Client,
        sessions: SessionStore,
        guard: Callable[[], AbstractContextManager[None]],
        key_prefix: str = RedisStorage.PREFIX,
        **_: Any,
    ) -> None:
        Storage.__init__(self, uri)
        self.storage = client
        self.key_prefix = key_prefix
        self.target_server = "redis"
        self.dependency = redis
        self._sessions = sessions
        self._guard = guard
        self._windows: dict[str, tuple[int, float]] = {}
        self._windows_lock = threading.Lock()
        # EVALSHA: the script is sent once, then named by its hash.
        self._count = client.register_script(COUNT)
        self.initialize_storage(uri)

    def get_connection(self, readonly: bool = False) -> Any:
        return self.storage

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        keys, args = self._count_call(key, expiry, amount)
        with self._guard():
            count, ttl_ms = self._count(keys=keys, args=args)
        if int(count) < 0:
            raise SessionNotLive()
        self._remember(key, int(count), time.time() + int(ttl_ms) / 1000)
        return int(count)

    def get(self, key: str) -> int:
        window = self._windows.get(key)
        if window is not None:
            return window[0]
        with self._guard():
            return int(super().get(self._counter(key)))

    def get_expiry(self, key: str) -> float:
        window = self._windows.get(key)
        if window is not None:
            return window[1]
        with self._guard():
            return float(super().get_expiry(self._counter(key)))

    def _count_call(self, key: str, expiry: int, amount: int) -> tuple[list[str], list[Any]]:
        counter = self.prefixed_key(self._counter(key))
        if _SESSION_MARK not in key:
            return [counter], [expiry, amount]
        session = _SESSION_PART.search(key)
        user = _USER_TAG.search(key)
        if session is None or user is None:
            raise SessionNotLive()  # a malformed check never counts as a live session
        session_key, check = self._sessions.session_check(
            user_id=int(user["uid"]), session_id=session["sid"], jti=session["jti"]
        )
        return [counter, session_key], [expiry, amount, *check]

    @staticmethod
    def _counter(key: str) -> str:
        return _SESSION_PART.sub("", key, count=1) if _SESSION_MARK in key else key

    def _remember(self, key: str, count: int, reset_at: float) -> None:
        with self._windows_lock:
            self._windows.pop(key, None)
            self._windows[key] = (count, reset_at)
            if len(self._windows) > REMEMBERED_WINDOWS:
                del self._windows[next(iter(self._windows))]


class ServiceRedisStorage(_ServiceStorage):
    STORAGE_SCHEME = ["redis+service"]  # noqa: RUF012 (limits registers the scheme)


class ServiceRedisSentinelStorage(_ServiceStorage, RedisSentinelStorage):
    STORAGE_SCHEME = ["redis+sentinel+service"]  # noqa: RUF012


class ServiceRedisClusterStorage(_ServiceStorage, RedisClusterStorage):
    STORAGE_SCHEME = ["redis+cluster+service"]  # noqa: RUF012


STORAGES: dict[Topology, type[_ServiceStorage]] = {
    "node": ServiceRedisStorage,
    "sentinel": ServiceRedisSentinelStorage,
    "cluster": ServiceRedisClusterStorage,
}
