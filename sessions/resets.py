"""Password-reset tokens: `<user id>.<secret>` with 256 random bits, single use.

Redis keeps one key per account, `password-reset:{u:<uid>}`, holding the hash of its
newest token and expiring with it: a newer token replaces (spends) the older, and using
one deletes it.
"""

import re
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sessions.keys import user_tag
from sessions.lua import LuaScript
from sessions.redis_client import Client
from sessions.refresh import hash_secret

# What a token looks like (also stated in OpenAPI): the account's id, then the secret.
TOKEN_PATTERN = r"^[1-9][0-9]{0,18}\.[A-Za-z0-9_-]{43,128}$"  # noqa: S105 (a shape)
_TOKEN = re.compile(TOKEN_PATTERN, re.ASCII)

# KEYS: the account's reset key. ARGV: presented hash. 1 when it was the current token.
_SPEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
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
        if not _TOKEN.fullmatch(value):
            return None
        user_id, secret = value.split(".")
        return cls(int(user_id), secret)


class ResetTokens:
    def __init__(
        self,
        redis: Client,
        *,
        ttl_seconds: int,
        guard: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        # Around every call to Redis (the service's circuit breaker).
        self._guard = guard
        self._spend = LuaScript(_SPEND)

    def issue(self, user_id: int) -> ResetToken:
        token = ResetToken(user_id, secrets.token_urlsafe(32))
        with self._guard():
            self._redis.set(reset_key(user_id), hash_secret(token.secret), ex=self.ttl_seconds)
        return token

    def is_current(self, token: ResetToken) -> bool:
        with self._guard():
            stored = self._redis.get(reset_key(token.user_id))
        return stored is not None and _text(stored) == hash_secret(token.secret)

    def spend(self, token: ResetToken) -> bool:
        """Use the token up; False when it was not (or is no longer) the current one."""
        with self._guard():
            spent = self._spend(
                self._redis, [reset_key(token.user_id)], [hash_secret(token.secret)]
            )
        return bool(spent)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
