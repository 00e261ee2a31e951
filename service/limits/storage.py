"""The `limits` storage SlowAPI counts in: a small one of our own, registered by scheme
(`service+redis://`), on the service's Redis client and behind its Redis circuit breaker,
whatever the topology (one node, Sentinel, Cluster): one pool and one breaker for sessions
and limits alike, and no counter read from a replica, where it may lag.

A hit is one script (INCRBY, and the window's expiry when the counter is new) that answers
the count and the time the window has left. SlowAPI's Limiter compares the count with the
limit; this storage also keeps the answer for the request that made the hit (`recording`),
so the X-RateLimit-* headers describe that request's own count, never a later read that
other requests may have moved, and cost no second round trip.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis
from limits.storage import Storage

from sessions.redis_client import Client

SCHEME = "service+redis"
PREFIX = "LIMITS"
# KEYS: the counter. ARGV: window seconds, amount. Returns {count, ms left in the window}.
_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1]) * 1000
end
return {count, ttl}
"""


@dataclass(frozen=True, slots=True)
class Hit:
    """What one hit of a limit answered: the count with it, and when its window ends."""

    count: int
    reset_at: float


# The hits of the request being admitted, by limits key: set by `recording` around
# SlowAPI's check, in that request's own context (each request runs in a copy).
_recorded: ContextVar[dict[str, Hit] | None] = ContextVar("rate_limit_hits", default=None)


@contextmanager
def recording() -> Iterator[dict[str, Hit]]:
    """Collect what the hits made inside the block answered, by their limits key."""
    hits: dict[str, Hit] = {}
    token = _recorded.set(hits)
    try:
        yield hits
    finally:
        _recorded.reset(token)


class ServiceStorage(Storage):
    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (limits registers the class by it)

    def __init__(
        self,
        uri: str,
        *,
        client: Client,
        guard: Callable[[], AbstractContextManager[None]],
        **options: Any,
    ) -> None:
        super().__init__(uri, **options)
        self._client = client
        self._guard = guard
        # Run on its own on every request: redis-py's Script (EVALSHA, loaded when missing).
        self._hit = client.register_script(_HIT)

    @property
    def base_exceptions(self) -> type[Exception]:
        return redis.RedisError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with self._guard():
            count, ttl_ms = self._hit(keys=[f"{PREFIX}:{key}"], args=[expiry, amount])
        if (hits := _recorded.get()) is not None:
            hits[key] = Hit(int(count), time.time() + int(ttl_ms) / 1000)
        return int(count)

    def get(self, key: str) -> int:
        with self._guard():
            return int(self._client.get(f"{PREFIX}:{key}") or 0)

    def get_expiry(self, key: str) -> float:
        with self._guard():
            ttl_ms = int(self._client.pttl(f"{PREFIX}:{key}"))
        return time.time() + max(ttl_ms, 0) / 1000

    def check(self) -> bool:
        with self._guard():
            return bool(self._client.ping())

    def reset(self) -> int | None:
        # Counters are never cleared in bulk (no KEYS, no SCAN on the request path).
        raise NotImplementedError

    def clear(self, key: str) -> None:
        with self._guard():
            self._client.delete(f"{PREFIX}:{key}")
