"""What every route checks before its work: the rate-limit budget and, on protected
routes, the session.

The checks run at the start of the route's own worker-thread call (`@authenticated`,
`@within_budget`, `@registration`) rather than as sync FastAPI dependencies: each sync
dependency is one more thread-pool hop, which measured ~12% of the CPU of an authenticated
read on this stack. On authenticated routes the check verifies the JWT, then sends one
Redis pipeline that counts the client's budget and checks that the session is live and
holds the token's `jti`. When FastAPI refuses a request before the route runs (422), the
exception handler runs the route's check first, so invalid requests are still counted and
an unauthenticated one still gets 401.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from service.errors import NotAuthenticated, RateLimited
from service.ratelimit import LimitState
from service.runtime import Runtime
from sessions.tokens import AccessClaims, InvalidTokenError

bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /login")
# Declares the bearer scheme on protected routes in OpenAPI; `authenticate` reads the header.
BEARER_IN_OPENAPI = [Security(bearer_scheme)]


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


def authenticate(request: Request) -> Principal:
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
    """The per-client budget on routes that need no token; a valid token, if one is sent,
    still keys the budget by user."""
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
Endpoint = Callable[..., Any]
REQUEST_CHECK = "request_check"


def checked_first(
    check: Callable[[Request], Any], *, into: str, hashes_passwords: bool = False
) -> Callable[[Endpoint], Endpoint]:
    """Decorate a sync route: `check(request)` runs first, in the same worker-thread call,
    and its result is passed as the route's `into` argument (hidden from FastAPI). The
    call runs in the runtime's request pool, or its password pool (`service.threads`)."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        signature = inspect.signature(endpoint)
        parameters = [p for name, p in signature.parameters.items() if name != into]
        wants_request = "request" in signature.parameters
        if not wants_request:
            keyword = inspect.Parameter.KEYWORD_ONLY
            parameters.append(inspect.Parameter("request", keyword, annotation=Request))

        def checked(**arguments: Any) -> Any:
            request = arguments["request"] if wants_request else arguments.pop("request")
            return endpoint(**arguments, **{into: check(request)})

        @functools.wraps(endpoint)
        async def route(**arguments: Any) -> Any:
            runtime: Runtime = arguments["request"].app.state.runtime
            call = functools.partial(checked, **arguments)
            return await runtime.threads.run(call, hashes_passwords=hashes_passwords)

        route.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        setattr(route, REQUEST_CHECK, check)
        return route

    return decorate


def route_check(request: Request) -> Callable[[Request], Any] | None:
    """The check of the route this request matched, if it has one."""
    endpoint = request.scope.get("endpoint")
    check: Callable[[Request], Any] | None = getattr(endpoint, REQUEST_CHECK, None)
    return check


authenticated = checked_first(authenticate, into="principal")
within_budget = checked_first(public_budget, into="runtime")
# The two routes that hash a password.
credentials_check = checked_first(public_budget, into="runtime", hashes_passwords=True)
registration = checked_first(register_budget, into="runtime", hashes_passwords=True)
