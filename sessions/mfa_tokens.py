"""The first half of a login with a second factor: the password was right, the code is
still to come. No session exists until then; Redis keeps only this, for `ttl_seconds`:

`mfa-token:{u:<uid>}:<sha256 of the secret>`, a hash of the credentials version the login
checked (a password change or reset in between voids it), the device a valid device token
named (so the session that follows renews that device's token, as a plain login would),
and the wrong codes so far. The token the client holds is `<user id>.<secret>` (256 random
bits); it is spent by the login it completes, and dies after MAX_FAILURES wrong codes or
when it expires.
"""

import re
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sessions.keys import mfa_token_key
from sessions.lua import LuaScript
from sessions.redis_client import Client
from sessions.refresh import hash_secret

MAX_FAILURES = 5
# What a client may send as an mfa_token: longer than any issued, never parsed.
MAX_TOKEN_LENGTH = 256
_TOKEN = re.compile(r"[1-9][0-9]{0,18}\.[A-Za-z0-9_-]{43}", re.ASCII)

# KEYS: the token's key. ARGV: the TTL, the credentials version, the device ("" if none),
# how the first half proved the account ("password", "oidc:<name>").
_ISSUE = """
redis.call('HSET', KEYS[1], 'credentials_version', ARGV[2], 'device', ARGV[3], 'failures', 0,
  'first', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
# KEYS: the token's key. ARGV: MAX_FAILURES. The failures after this one; the token is
# deleted at the last.
_FAIL = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
end
return failures
"""


@dataclass(frozen=True, slots=True)
class MfaToken:
    user_id: int
    secret: str

    def __str__(self) -> str:
        return f"{self.user_id}.{self.secret}"

    @classmethod
    def parse(cls, value: str) -> "MfaToken | None":
        if len(value) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(value):
            return None
        user_id, secret = value.split(".")
        return cls(int(user_id), secret)

    @property
    def key(self) -> str:
        return mfa_token_key(self.user_id, hash_secret(self.secret))


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the first half of the login found: the account as it checked it, the device,
    and how it was proved (the session's first auth method)."""

    token: MfaToken
    credentials_version: int
    device: str | None
    first_method: str = "password"


class MfaTokens:
    def __init__(
        self,
        redis: Client,
        *,
        ttl_seconds: int,
        guard: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self._guard = guard
        self._issue = LuaScript(_ISSUE)
        self._fail = LuaScript(_FAIL)

    def issue(
        self,
        *,
        user_id: int,
        credentials_version: int,
        device: str | None,
        first_method: str = "password",
    ) -> MfaToken:
        token = MfaToken(user_id, secrets.token_urlsafe(32))
        args: list[str | float] = [
            self.ttl_seconds, credentials_version, device or "", first_method,
        ]  # fmt: skip
        with self._guard():
            self._issue(self._redis, [token.key], args)
        return token

    def find(self, value: str) -> PendingLogin | None:
        """The pending login a token names; None for a malformed, unknown, spent or
        expired one."""
        token = MfaToken.parse(value)
        if token is None:
            return None
        with self._guard():
            fields: dict[bytes, bytes] = self._redis.hgetall(token.key)  # type: ignore[assignment]
        if not fields:
            return None
        version = int(fields[b"credentials_version"])
        device = fields[b"device"].decode() or None
        first = fields.get(b"first", b"password").decode()
        return PendingLogin(token, version, device, first)

    def fail(self, pending: PendingLogin) -> None:
        """A wrong code against it: the last one allowed deletes it."""
        with self._guard():
            self._fail(self._redis, [pending.token.key], [MAX_FAILURES])

    def spend(self, pending: PendingLogin) -> bool:
        """Use it up; False when it was gone already (spent by a concurrent login, dead)."""
        with self._guard():
            return bool(self._redis.delete(pending.token.key))
