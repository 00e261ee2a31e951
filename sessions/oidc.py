"""Sign-in with an OpenID Connect provider: what Redis keeps between its steps, each taken
once (GETDEL: a replayed callback or login code finds nothing).

- `oidc-state:<sha256(state)>`: a pending authorization, from the redirect to the provider
  to its callback (10 minutes): the provider's name, the hash of the nonce the ID token must
  carry, the PKCE verifier, the hash of the browser's binding (sign-in) or the user who
  links (linking). The state itself is never stored: only its hash names the key.
- `oidc-login:{u:<uid>}:<sha256(secret)>`: a login code `<uid>.<secret>` (256 random bits,
  60 seconds), what the browser brings back to the front end instead of any token; it names
  the provider it came through, and the front end's code challenge when it sent one. Under
  the user's hash tag, like every key of a user.
- `oidc-link:{u:<uid>}:<sha256(secret)>`: a link code (256 random bits, 60 seconds), what
  a linking callback brings back instead of linking: the identity it vouched for. It is
  named by the account that began the link, so only that account, signed in, can spend it:
  a linking URL handed to somebody else links nothing (their front end's token names
  another account, whose key holds no such code).
"""

import json
import re
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass

from sessions.keys import user_tag
from sessions.redis_client import Client
from sessions.refresh import hash_secret
from sessions.resets import ResetToken

STATE_TTL_SECONDS = 600
LOGIN_CODE_TTL_SECONDS = 60
# What a callback may bring as a state: longer than any state issued is unknown anyway.
MAX_STATE_LENGTH = 256
# A link code: secrets.token_urlsafe(32), 256 random bits.
LINK_CODE = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)


def state_key(state: str) -> str:
    return f"oidc-state:{hash_secret(state)}"


def login_code_key(user_id: int, secret: str) -> str:
    return f"oidc-login:{user_tag(user_id)}:{hash_secret(secret)}"


def link_code_key(user_id: int, secret: str) -> str:
    return f"oidc-link:{user_tag(user_id)}:{hash_secret(secret)}"


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    provider: str
    nonce_hash: str
    code_verifier: str
    # Sign-in: the hash of the binding cookie of the browser that started it.
    browser_hash: str | None = None
    # Linking: the account the identity is to be linked to.
    link_user_id: int | None = None
    # Sign-in: the front end's S256 code challenge, when it sent one: the login code is
    # then traded only with its verifier.
    client_challenge: str | None = None


@dataclass(frozen=True, slots=True)
class LoginCode:
    user_id: int
    provider: str
    client_challenge: str | None = None


@dataclass(frozen=True, slots=True)
class PendingLink:
    """An identity a provider vouched for, to be linked to the account that began it."""

    provider: str
    subject: str
    email: str | None


class OidcFlows:
    def __init__(
        self,
        redis: Client,
        *,
        guard: Callable[[], AbstractContextManager[None]] = nullcontext,
        state_ttl_seconds: int = STATE_TTL_SECONDS,
        login_code_ttl_seconds: int = LOGIN_CODE_TTL_SECONDS,
    ) -> None:
        self._redis = redis
        # Around every call to Redis (the service's circuit breaker).
        self._guard = guard
        self._state_ttl = state_ttl_seconds
        self._code_ttl = login_code_ttl_seconds

    def begin(self, pending: PendingAuthorization) -> str:
        """A new state for `pending`: kept for 10 minutes, or until its callback."""
        state = secrets.token_urlsafe(32)
        with self._guard():
            self._redis.set(state_key(state), json.dumps(asdict(pending)), ex=self._state_ttl)
        return state

    def take(self, state: str) -> PendingAuthorization | None:
        """The authorization `state` was made for, once; None when unknown, spent or
        expired."""
        if not state or len(state) > MAX_STATE_LENGTH:
            return None
        with self._guard():
            stored = self._redis.getdel(state_key(state))
        if stored is None:
            return None
        return PendingAuthorization(**json.loads(stored))

    def issue_login_code(
        self, *, user_id: int, provider: str, client_challenge: str | None = None
    ) -> str:
        code = ResetToken(user_id, secrets.token_urlsafe(32))
        value = json.dumps({"provider": provider, "client_challenge": client_challenge})
        with self._guard():
            self._redis.set(login_code_key(user_id, code.secret), value, ex=self._code_ttl)
        return str(code)

    def redeem_login_code(self, code: str) -> LoginCode | None:
        """Spend the code; None when it is malformed, unknown, spent or expired."""
        parsed = ResetToken.parse(code)
        if parsed is None:
            return None
        with self._guard():
            stored = self._redis.getdel(login_code_key(parsed.user_id, parsed.secret))
        if stored is None:
            return None
        value = json.loads(stored)
        return LoginCode(parsed.user_id, value["provider"], value.get("client_challenge"))

    def issue_link_code(self, *, user_id: int, link: PendingLink) -> str:
        secret = secrets.token_urlsafe(32)
        with self._guard():
            self._redis.set(
                link_code_key(user_id, secret), json.dumps(asdict(link)), ex=self._code_ttl
            )
        return secret

    def redeem_link_code(self, *, user_id: int, code: str) -> PendingLink | None:
        """Spend the code `user_id`'s link brought back; None when it is unknown, spent,
        expired, or another account's."""
        if not LINK_CODE.fullmatch(code):
            return None  # not of a code's shape (a lone surrogate would not even hash)
        with self._guard():
            stored = self._redis.getdel(link_code_key(user_id, code))
        if stored is None:
            return None
        return PendingLink(**json.loads(stored))
