"""Rate limits shared by every worker and replica: SlowAPI's Limiter on the service's Redis.

The Limiter holds the limits and the Redis storage (one connection pool with the session
store). Hits are made in the thread pool, by the route checks of `service.deps`, rather than
by SlowAPIMiddleware: the middleware makes blocking Redis calls on the event loop and needs
three round trips for the X-RateLimit headers. Here one Lua script increments the counter
and reports its window, and on authenticated routes it shares one pipeline with the session
check. Keys and expiry are those of the Limiter's fixed-window strategy and storage, so its
own tools (`limiter.limiter.get_window_stats`, `limiter.limiter.clear`) see the same counters.
"""

import math
import time
from dataclasses import dataclass
from typing import Any

import redis
from limits import RateLimitItem, parse
from slowapi import Limiter
from slowapi.util import get_remote_address

from sessions.lua import LuaScript

# KEYS: counter. ARGV: window seconds. Returns {hits so far, milliseconds until reset}.
_HIT = """
local current = redis.call('INCRBY', KEYS[1], 1)
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1]) * 1000
end
return {current, ttl}
"""


@dataclass(frozen=True, slots=True)
class LimitState:
    limit: int
    hits: int
    reset_in_seconds: float

    @property
    def allowed(self) -> bool:
        return self.hits <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """X-RateLimit-* as raw ASGI headers; Reset in epoch seconds, as GitHub sends it."""
        reset = math.ceil(time.time() + self.reset_in_seconds)
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]

    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.reset_in_seconds)))


class RateLimits:
    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        redis_url: str,
        budget: str,
        login: str,
        register: str,
    ) -> None:
        self.budget = parse(budget)
        self.login = parse(login)
        self.register = parse(register)
        # application_limits: one budget per client across every route together
        # (default_limits would count each path separately).
        self.limiter = Limiter(
            key_func=get_remote_address,
            application_limits=[budget],
            storage_uri=redis_url,
            storage_options={"connection_pool": redis_client.connection_pool},  # type: ignore[dict-item]
            strategy="fixed-window",
            headers_enabled=True,
        )
        self._storage: Any = self.limiter.limiter.storage
        self._redis = redis_client
        self._hit = LuaScript(_HIT)

    def queue_hit(self, pipe: Any, item: RateLimitItem, *identifiers: str) -> None:
        """Add a hit to a pipeline; read its result with `state()`."""
        self._hit(pipe, [self._key(item, *identifiers)], [item.get_expiry()])

    def hit(self, item: RateLimitItem, *identifiers: str) -> LimitState:
        result = self._hit(self._redis, [self._key(item, *identifiers)], [item.get_expiry()])
        return self.state(item, result)

    @staticmethod
    def state(item: RateLimitItem, result: list[int]) -> LimitState:
        hits, ttl_ms = result
        return LimitState(limit=item.amount, hits=int(hits), reset_in_seconds=int(ttl_ms) / 1000)

    def _key(self, item: RateLimitItem, *identifiers: str) -> str:
        return str(self._storage.prefixed_key(item.key_for(*identifiers)))
