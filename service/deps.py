"""Dependencies, declared once as `Annotated` aliases.

Each route pays one sync dependency (one thread-pool hop). On authenticated routes it
verifies the JWT, then sends one Redis pipeline that counts the client's rate-limit budget
and checks that the session is live and holds the token's `jti`.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import NotAuthenticated, RateLimited
from service.ratelimit import LimitState
from service.runtime import Runtime
from sessions.tokens import AccessClaims, InvalidTokenError

bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /login")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user, through one live session."""

    user_id: int
    session_id: str
    runtime: Runtime


def client_ip(request: Request) -> str:
    # The socket peer, or what a trusted proxy said (uvicorn --forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


def enforce_limit(request: Request, state: LimitState) -> None:
    """Refuse with 429 when over the limit. The tightest limit seen is kept in the request
    state; the middleware turns it into X-RateLimit-* headers on whatever the answer is."""
    shown: LimitState | None = getattr(request.state, "rate_limit", None)
    if shown is None or not state.allowed or state.remaining < shown.remaining:
        request.state.rate_limit = state
    if not state.allowed:
        raise RateLimited(headers={"Retry-After": state.retry_after()})


def _verified_claims(runtime: Runtime, authorization: str | None) -> AccessClaims | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return runtime.tokens.verify(token.strip())
    except InvalidTokenError:
        return None


def _budget_key(request: Request, claims: AccessClaims | None) -> str:
    # A verified signature is enough to key by user; no Redis lookup is needed for that.
    return f"user:{claims.user_id}" if claims else f"ip:{client_ip(request)}"


def authenticate(request: Request, _bearer_scheme: Bearer) -> Principal:
    # `_bearer_scheme` only declares the security scheme in OpenAPI; the header is read
    # here, once, whatever its shape.
    runtime: Runtime = request.app.state.runtime
    authorization = request.headers.get("authorization")
    claims = _verified_claims(runtime, authorization)
    limits = runtime.limits
    # Fails closed: a RedisError here propagates and is answered with 503.
    with runtime.redis.pipeline(transaction=False) as pipe:
        limits.queue_hit(pipe, limits.budget, _budget_key(request, claims))
        if claims is not None:
            runtime.sessions.queue_authenticate(pipe, claims.user_id, claims.session_id, claims.jti)
        results = pipe.execute()
    enforce_limit(request, limits.state(limits.budget, results[0]))
    if claims is None:
        raise NotAuthenticated("Invalid or expired token" if authorization else None)
    if not runtime.sessions.is_live(results[1]):
        raise NotAuthenticated("Session expired or revoked")
    request.state.user_id = claims.user_id
    request.state.session_id = claims.session_id
    return Principal(user_id=claims.user_id, session_id=claims.session_id, runtime=runtime)


def public_budget(request: Request) -> Runtime:
    """The per-client budget on routes that need no token (which, for the same reason,
    read the Authorization header themselves: a security dependency would mark them as
    needing one in OpenAPI)."""
    runtime: Runtime = request.app.state.runtime
    claims = _verified_claims(runtime, request.headers.get("authorization"))
    enforce_limit(request, runtime.limits.hit(runtime.limits.budget, _budget_key(request, claims)))
    return runtime


def register_budget(request: Request) -> Runtime:
    """The per-client budget plus the per-IP registration limit, in one round trip."""
    runtime: Runtime = request.app.state.runtime
    limits = runtime.limits
    claims = _verified_claims(runtime, request.headers.get("authorization"))
    with runtime.redis.pipeline(transaction=False) as pipe:
        limits.queue_hit(pipe, limits.budget, _budget_key(request, claims))
        limits.queue_hit(pipe, limits.register, f"ip:{client_ip(request)}")
        budget, register = pipe.execute()
    enforce_limit(request, limits.state(limits.budget, budget))
    enforce_limit(request, limits.state(limits.register, register))
    return runtime


def enforce_login_limit(runtime: Runtime, request: Request, email: str) -> None:
    """Password guessing: a limit per client IP and submitted email, checked before any
    database query or password hash. The email needs the body, so routes call this."""
    state = runtime.limits.hit(runtime.limits.login, f"ip:{client_ip(request)}", email.lower())
    enforce_limit(request, state)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CurrentSession = Annotated[Principal, Depends(authenticate)]
PublicBudget = Annotated[Runtime, Depends(public_budget)]
RegisterBudget = Annotated[Runtime, Depends(register_budget)]
