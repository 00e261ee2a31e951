"""Who is calling: the dependencies that authenticate a request, declared once per router
(`service.main` adds `REQUIRE_SESSION` to every router that is not public).

A request is authenticated only if its bearer token's signature and claims verify and the
session it names is live in Redis and holds the token's `jti`. Both checks run on the
event loop (the session check with the asyncio Redis client), so they cost the request no
thread-pool hop. A refused request still spends its client's budget before the 401.
"""

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import NotAuthenticated
from service.runtime import Runtime
from sessions.tokens import InvalidTokenError

bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /login")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user, through one live session."""

    user_id: int
    session_id: str


async def _live_principal(request: Request, token: str | None) -> Principal | None:
    if token is None:
        return None
    runtime: Runtime = request.app.state.runtime
    try:
        claims = runtime.tokens.verify(token)
    except InvalidTokenError:
        return None
    live = await runtime.sessions.authenticate_async(
        user_id=claims.user_id, session_id=claims.session_id, jti=claims.jti
    )
    if not live:
        return None
    principal = Principal(user_id=claims.user_id, session_id=claims.session_id)
    # Read by the rate limits' key function and the access log.
    request.state.principal = principal
    return principal


async def authenticated(request: Request, credentials: Credentials) -> Principal:
    principal = await _live_principal(request, credentials.credentials if credentials else None)
    if principal is None:
        runtime: Runtime = request.app.state.runtime
        await runtime.threads.run(functools.partial(runtime.limits.spend_budget, request=request))
        raise NotAuthenticated("Invalid or expired token" if credentials else None)
    if request.scope.get("query_string"):
        refuse_unknown_query_parameters(request)
    return principal


async def identified(request: Request) -> Principal | None:
    """On public routes: the caller if they sent a token of a live session (it keys their
    budget), else None; never a refusal. Reads the header itself, so that OpenAPI does
    not mark public routes as needing a token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return await _live_principal(request, bearer)


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]
REQUIRE_SESSION = Security(authenticated)
IDENTIFY_CALLER = Depends(identified)


def refuse_unknown_query_parameters(request: Request) -> None:
    """On a route that takes query parameters: 422 for one it does not declare, or one of
    its parameters given more than once (each takes one value), so that a typo is named,
    not silently ignored. Checked here, with the caller, rather than as a dependency of its
    own: each dependency costs every request of the route, and this one only matters when
    there is a query string."""
    route = request.scope.get("route")
    declared = {param.alias for param in route.dependant.query_params} if route else set()
    if not declared:
        return
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in declared:
            if name not in seen:
                msg = f"Unknown query parameter {name!r}; known: {', '.join(sorted(declared))}"
                errors.append({"type": "extra_forbidden", "loc": ["query", name], "msg": msg})
        elif name in seen:
            msg = f"Query parameter {name!r} given more than once; it takes one value"
            error = {"type": "repeated_parameter", "loc": ["query", name], "msg": msg}
            if error not in errors:
                errors.append(error)
        seen.add(name)
    if errors:
        raise RequestValidationError(errors)
