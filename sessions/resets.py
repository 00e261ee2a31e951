"""Password-reset tokens: `<user id>.<secret>` with 256 random bits.

Every token mailed works until it is used, it expires, or any reset of its account
succeeds, which spends them all: asking for a new mail never voids one already sent (so
whoever triggers mails for an address cannot keep its owner's link dead).

Redis keeps one key per account, `password-reset:{u:<uid>}` (the user's hash tag, like
every key of a user): a sorted set of the hashes of its outstanding tokens (SHA-256 of the
secret; never the token itself), each scored by its expiry in epoch milliseconds. Issuing
a token drops the expired ones and keeps at most MAX_OUTSTANDING; the key expires with its
newest token. Spending a token deletes the whole key, in one script.
"""

import re
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sessions.keys import user_tag
from sessions.lua import LuaScript
from sessions.redis_client import Client
from sessions.refresh import hash_secret

# What a token looks like: the account's id, then the secret.
_TOKEN = re.compile(r"[1-9][0-9]{0,18}\.[A-Za-z0-9_-]{43,128}", re.ASCII)
# What a reset request may send as a token: longer than any token issued.
MAX_TOKEN_LENGTH = 256
# More outstanding tokens than mails the per-address limit lets through in one TTL.
MAX_OUTSTANDING = 20

# KEYS: the account's reset key. ARGV: the new token's hash, its expiry (ms), now (ms),
# the TTL (ms), MAX_OUTSTANDING.
_ISSUE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[5]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""
# KEYS: the account's reset key. ARGV: the presented token's hash, now (ms).
# 1 when it was outstanding: then every token of the account is spent.
_SPEND = """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expires and tonumber(expires) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def reset_key(user_id: int) -> str:
    return f"password-reset:{user_tag(user_id)}"


@dataclass(frozen=True, slots=True)
class ResetToken:
    user_id: int
    secret: str

    def __str__(self) -> str:
        return f"{self.user_id}.{self.secret}"

    @classmethod
    def parse(cls, value: str) -> "ResetToken | None":
        """The token, or None when `value` is not of a token's shape."""
        if len(value) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(value):
            return None
        user_id, secret = value.split(".")
        return cls(int(user_id), secret)


class ResetTokens:
    # The key of an account's outstanding tokens (sessions.verifications has its own).
    key = staticmethod(reset_key)

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
        # Around every call to Redis (the service's circuit breaker).
        self._guard = guard
        self._clock = clock
        self._issue = LuaScript(_ISSUE)
        self._spend = LuaScript(_SPEND)

    def issue(self, user_id: int) -> ResetToken:
        """A new token for the account; those issued before it stay valid."""
        token = ResetToken(user_id, secrets.token_urlsafe(32))
        now, ttl = self._now_ms(), self.ttl_seconds * 1000
        args: list[str | float] = [hash_secret(token.secret), now + ttl, now, ttl, MAX_OUTSTANDING]
        with self._guard():
            self._issue(self._redis, [self.key(user_id)], args)
        return token

    def is_current(self, token: ResetToken) -> bool:
        """Whether the token is outstanding: issued, not spent, not expired."""
        with self._guard():
            expires = self._redis.zscore(self.key(token.user_id), hash_secret(token.secret))
        return expires is not None and expires > self._now_ms()

    def spend(self, token: ResetToken) -> bool:
        """Use the token up, and with it every other token of its account; False when it
        was not (or is no longer) outstanding."""
        args: list[str | float] = [hash_secret(token.secret), self._now_ms()]
        with self._guard():
            spent = self._spend(self._redis, [self.key(token.user_id)], args)
        return bool(spent)

    def spend_all(self, user_id: int) -> None:
        """Spend every outstanding token of the account (its password changed)."""
        with self._guard():
            self._redis.delete(self.key(user_id))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
