"""The client addresses an account has signed in from: a login from one of them is the
owner's more likely than a stranger's, so it is not counted against the account-wide limit
on password guesses (OWASP's advice against lockouts that anyone can cause: only clients
that never succeeded for the account share that limit).

One sorted set per account, `known-clients:{u:<uid>}`, each address scored by the last time
it signed in; the newest MAX_KNOWN are kept, and the set expires `ttl_seconds` after the last
sign-in. An address counts as known for `ttl_seconds` after its last sign-in.
"""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from sessions.keys import known_clients_key
from sessions.lua import LuaScript
from sessions.redis_client import Client

MAX_KNOWN = 20
# KEYS: the account's set. ARGV: the address, now, ttl seconds, how many to keep.
_REMEMBER = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class KnownClients:
    def __init__(
        self,
        redis: Client,
        *,
        ttl_seconds: int,
        guard: Callable[[], AbstractContextManager[None]] = nullcontext,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self._guard = guard
        self._clock = clock
        self._remember = LuaScript(_REMEMBER)

    def knows(self, *, user_id: int, ip: str) -> bool:
        """Whether the account signed in from `ip` within the last `ttl_seconds`."""
        with self._guard():
            last = self._redis.zscore(known_clients_key(user_id), ip)
        return last is not None and self._clock() - float(last) < self.ttl_seconds

    def remember(self, *, user_id: int, ip: str) -> None:
        """The account signed in from `ip` just now."""
        args: list[str | float] = [ip, self._clock(), self.ttl_seconds, MAX_KNOWN]
        with self._guard():
            self._remember(self._redis, [known_clients_key(user_id)], args)

    def forget(self, *, user_id: int) -> None:
        """Every address (the account is deleted)."""
        with self._guard():
            self._redis.delete(known_clients_key(user_id))
