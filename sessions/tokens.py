"""Access tokens: HS256 JWTs issued and verified with joserfc."""

import functools
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import ClaimsOption

ALGORITHM = "HS256"
LEEWAY_SECONDS = 1
# What this codec issues as session ids and jtis: URL-safe base64 (they travel in keys).
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
# Tokens whose signature and claims were verified, per codec: a client sends the same token
# for its whole lifetime (15 minutes by default), and verifying it again is a fifth of a
# read's CPU (docs/performance.md). Only the expiry can change its verdict, and it is
# checked on every use; the session behind it is checked on every use by the caller.
VERIFIED_TOKENS = 8192


class InvalidTokenError(Exception):
    """The token is malformed, wrongly signed, of another algorithm, or its claims fail."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str
    jti: str
    expires_at: int


def new_jti() -> str:
    return secrets.token_urlsafe(16)


class TokenCodec:
    def __init__(
        self,
        *,
        secret: str,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = OctKey.import_key(secret.encode())
        self._clock = clock
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds
        essential: ClaimsOption = {"essential": True}
        self._claims_registry = jwt.JWTClaimsRegistry(
            now=lambda: int(clock()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp=essential,
            iat=essential,
            sub=essential,
            sid=essential,
            jti=essential,
        )

    def issue(self, *, user_id: int, session_id: str, jti: str, issued_at: int) -> str:
        """The same arguments always give the same token (HS256 is deterministic), which
        is how a refresh repeated within its grace period hands out the same pair."""
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": jti,
            "iat": issued_at,
            "exp": issued_at + self.ttl_seconds,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode({"alg": ALGORITHM}, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> AccessClaims:
        """The token's claims, or InvalidTokenError. Its signature and claims are verified
        once per token (VERIFIED_TOKENS); its expiry on every call."""
        claims = self._verified(token)
        if claims.expires_at <= int(self._clock()) - LEEWAY_SECONDS:  # as joserfc decides
            raise InvalidTokenError("expired")
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            if decoded.header.get("alg") != ALGORITHM:
                raise InvalidTokenError("unexpected algorithm")
            claims = decoded.claims
            self._claims_registry.validate(claims)
            user_id = int(claims["sub"])
            session_id, jti, expires_at = (
                claims["sid"],
                claims["jti"],
                int(claims["exp"]),
            )
        except InvalidTokenError:
            raise
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise InvalidTokenError(type(error).__name__) from error
        if not (
            isinstance(session_id, str)
            and isinstance(jti, str)
            and _ID.fullmatch(session_id)
            and _ID.fullmatch(jti)
            and 0 < user_id < 2**63
        ):
            raise InvalidTokenError("malformed claims")
        return AccessClaims(user_id=user_id, session_id=session_id, jti=jti, expires_at=expires_at)
