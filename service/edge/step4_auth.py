"""Step 4: authentication, in the route's worker thread. `admit` verifies the bearer
token's signature and claims, spends the budget (step5_budget, whose hit also checks that
the token's session is live), and refuses the caller of a protected route who has no live
session: 401, after the request was charged to the client IP.

Every route is protected unless its declaration says it is public (step3_route). A token
sent to a public route still keys its caller's budget by user when its session is live.
"""

from starlette.requests import Request

from service.edge import step5_budget as budget
from service.edge.call import Call
from service.errors import NotAuthenticated
from sessions.tokens import AccessClaims, InvalidTokenError, TokenCodec


def admit(request: Request, call: Call, *, limits: tuple[str, ...], public: bool) -> None:
    """Let the request in, or raise NotAuthenticated (401) or RateLimited (429)."""
    token = bearer_token(request)
    call.claims = _verified(request.app.state.runtime.tokens, token)
    budget.spend(request, call, limits, public=public)
    if call.principal is None and not public:
        raise NotAuthenticated("Invalid or expired token" if token is not None else None)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _verified(tokens: TokenCodec, token: str | None) -> AccessClaims | None:
    if token is None:
        return None
    try:
        return tokens.verify(token)
    except InvalidTokenError:
        return None
