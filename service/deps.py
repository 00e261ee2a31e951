"""Dependencies, declared once as `Annotated` aliases.

Each route pays one sync dependency (one thread-pool hop). On authenticated routes it
verifies the JWT, then sends one Redis pipeline that counts the client's rate-limit budget
and checks that the session is live and holds the token's `jti`.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response, Security
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


def enforce_limit(response: Response, state: LimitState) -> None:
    """Refuse with 429 when over the limit; else report the tightest limit in the headers."""
    if not state.allowed:
        raise RateLimited(headers=state.headers())
    shown = response.headers.get("X-RateLimit-Remaining")
    if shown is None or state.remaining < int(shown):
        response.headers.update(state.headers())


def _verified_claims(
    runtime: Runtime, credentials: HTTPAuthorizationCredentials | None
) -> AccessClaims | None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    try:
        return runtime.tokens.verify(credentials.credentials)
    except InvalidTokenError:
        return None


def _budget_key(request: Request, claims: AccessClaims | None) -> str:
    # A verified signature is enough to key by user; no Redis lookup is needed for that.
    return f"user:{claims.user_id}" if claims else f"ip:{client_ip(request)}"


def authenticate(request: Request, response: Response, credentials: Bearer) -> Principal:
    runtime: Runtime = request.app.state.runtime
    claims = _verified_claims(runtime, credentials)
    limits = runtime.limits
    # Fails closed: a RedisError here propagates and is answered with 503.
    with runtime.redis.pipeline(transaction=False) as pipe:
        limits.queue_hit(pipe, limits.budget, _budget_key(request, claims))
        if claims is not None:
            runtime.sessions.queue_authenticate(pipe, claims.user_id, claims.session_id, claims.jti)
        results = pipe.execute()
    budget = limits.state(limits.budget, results[0])
    enforce_limit(response, budget)
    if claims is None:
        detail = "Invalid or expired token" if credentials else None
        raise NotAuthenticated(detail, headers=budget.headers())
    if not runtime.sessions.is_live(results[1]):
        raise NotAuthenticated("Session expired or revoked", headers=budget.headers())
    request.state.user_id = claims.user_id
    request.state.session_id = claims.session_id
    return Principal(user_id=claims.user_id, session_id=claims.session_id, runtime=runtime)


def public_budget(request: Request, response: Response, credentials: Bearer) -> Runtime:
    """The per-client budget on routes that need no token."""
    runtime: Runtime = request.app.state.runtime
    claims = _verified_claims(runtime, credentials)
    enforce_limit(response, runtime.limits.hit(runtime.limits.budget, _budget_key(request, claims)))
    return runtime


def register_budget(request: Request, response: Response, credentials: Bearer) -> Runtime:
    """The per-client budget plus the per-IP registration limit, in one round trip."""
    runtime: Runtime = request.app.state.runtime
    limits = runtime.limits
    claims = _verified_claims(runtime, credentials)
    with runtime.redis.pipeline(transaction=False) as pipe:
        limits.queue_hit(pipe, limits.budget, _budget_key(request, claims))
        limits.queue_hit(pipe, limits.register, f"ip:{client_ip(request)}")
        budget, register = pipe.execute()
    enforce_limit(response, limits.state(limits.budget, budget))
    enforce_limit(response, limits.state(limits.register, register))
    return runtime


def enforce_login_limit(runtime: Runtime, request: Request, response: Response, email: str) -> None:
    """Password guessing: a limit per client IP and submitted email, checked before any
    database query or password hash. The email needs the body, so routes call this."""
    state = runtime.limits.hit(runtime.limits.login, f"ip:{client_ip(request)}", email.lower())
    enforce_limit(response, state)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CurrentSession = Annotated[Principal, Depends(authenticate)]
PublicBudget = Annotated[Runtime, Depends(public_budget)]
RegisterBudget = Annotated[Runtime, Depends(register_budget)]
