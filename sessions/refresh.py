"""Refresh tokens: `<user id>.<session id>.<secret>`, of which the store keeps only hashes."""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# ASCII only: str.isdigit() and \d accept digits such as "²" that int() refuses.
_REFRESH_TOKEN = re.compile(
    r"(?P<user_id>[1-9][0-9]{0,18})\.(?P<session_id>[A-Za-z0-9_-]{1,64})"
    r"\.(?P<secret>[A-Za-z0-9_-]{1,128})",
    re.ASCII,
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RefreshToken:
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
