"""Dependencies, declared once as `Annotated` aliases.

Authentication is one sync dependency (one thread-pool hop): verify the JWT, then one
Redis call that checks the session is live and holds the token's `jti`.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import NotAuthenticated
from service.runtime import Runtime
from sessions.tokens import InvalidTokenError

bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /login")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user, through one live session."""

    user_id: int
    session_id: str
    runtime: Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated()
    runtime: Runtime = request.app.state.runtime
    try:
        claims = runtime.tokens.verify(credentials.credentials)
    except InvalidTokenError:
        raise NotAuthenticated("Invalid or expired token") from None
    # Fails closed: a RedisError here propagates and is answered with 503.
    if not runtime.sessions.authenticate(
        user_id=claims.user_id, session_id=claims.session_id, jti=claims.jti
    ):
        raise NotAuthenticated("Session expired or revoked")
    request.state.user_id = claims.user_id
    request.state.session_id = claims.session_id
    return Principal(user_id=claims.user_id, session_id=claims.session_id, runtime=runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CurrentSession = Annotated[Principal, Depends(authenticate)]
