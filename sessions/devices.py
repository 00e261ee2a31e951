"""Device tokens (OWASP's "device cookies", for an API): proof that a client has logged in
to an account before, so that guesses spread over many clients cannot lock its owner out.

A token is `<user id>.<device id>.<expires at>.<signature>`: stateless, nothing is stored.
The signature is HMAC-SHA256 under a key derived from the service's secret for this one
purpose (a device token is never a valid JWT or anything else signed with that secret),
over the three visible parts and the account's canonical email, which the token does not
carry. So a token is valid only for the account it was issued to: the login must name the
same canonical email, and that email must reach the same user id now (an account deleted
and registered again is a new id: its old devices are strangers). A password change or
reset keeps them.
"""

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

PURPOSE = b"device-token"
_TOKEN = re.compile(
    r"(?P<uid>[1-9][0-9]{0,18})\.(?P<device>[A-Za-z0-9_-]{22})\.(?P<exp>[1-9][0-9]{0,11})"
    r"\.(?P<mac>[A-Za-z0-9_-]{43})",
    re.ASCII,
)
# What a login may send as a device token: longer than any token issued, never parsed.
MAX_LENGTH = 128


@dataclass(frozen=True, slots=True)
class DeviceToken:
    user_id: int
    device_id: str
    expires_at: int
    value: str

    def __str__(self) -> str:
        return self.value


class DeviceTokens:
    def __init__(
        self, *, secret: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def issue(self, *, user_id: int, email: str, device_id: str | None = None) -> DeviceToken:
        """A token for the account `user_id` whose canonical email is `email`: for the
        device `device_id` (a valid token's, to renew it), else for a new device."""
        device_id = device_id or secrets.token_urlsafe(16)
        expires_at = int(self._clock()) + self.ttl_seconds
        body = f"{user_id}.{device_id}.{expires_at}"
        value = f"{body}.{self._mac(body, email)}"
        return DeviceToken(user_id, device_id, expires_at, value)

    def device_of(self, token: str | None, *, user_id: int, email: str) -> str | None:
        """The device a token names, when it is a valid, unexpired token of the account
        `user_id` with the canonical email `email`; None for anything else."""
        if not token or len(token) > MAX_LENGTH:
            return None
        parts = _TOKEN.fullmatch(token)
        if parts is None or int(parts["uid"]) != user_id:
            return None
        body = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(parts["mac"], self._mac(body, email)):
            return None
        if int(parts["exp"]) <= self._clock():
            return None
        return parts["device"]

    def _mac(self, body: str, email: str) -> str:
        message = f"{body}\x00{email}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
