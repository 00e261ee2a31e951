"""Step 5: the budget. `spend` is the one function that spends a request's rate limits:
for its route (step3_route, in the route's worker thread), and for the 401, 415 and 422
answers given before the route runs (step6_errors, in one hop of their own).

SlowAPI's Limiter decides (service.limits). The budget's hit on a verified token's user
also checks, in the same Redis round trip, that the token's session is live; when it is
not, nothing was counted, and the request is charged to its client IP instead, as a
request without a token. Only then is the caller known: `Call.principal` is set here.
"""

from slowapi.errors import RateLimitExceeded
from starlette.requests import Request

from service import metrics
from service.edge.call import Call, Principal
from service.errors import RateLimited
from service.limits.policy import RateLimits
from service.limits.storage import SessionNotLive
from service.logging import get_logger

log = get_logger("service")


def spend(request: Request, call: Call, names: tuple[str, ...], *, public: bool) -> None:
    """Spend the budget and the limits `names` add (on a protected route, only once the
    caller is known: a limit keyed by the caller's account needs one). RateLimited (429)
    when a limit refuses."""
    limits: RateLimits = request.app.state.runtime.limits
    try:
        _check(request, call, limits, names if public or call.claims is not None else ())
    except SessionNotLive:
        call.claims = None
        _check(request, call, limits, names if public else ())
    call.admitted = True


def settle(request: Request, names: tuple[str, ...]) -> None:
    """After the route succeeded: give back what only failures should spend."""
    limits: RateLimits = request.app.state.runtime.limits
    limits.forgive(request, names)


def _check(request: Request, call: Call, limits: RateLimits, names: tuple[str, ...]) -> None:
    try:
        limits.check(request, names)
    except RateLimitExceeded as error:
        # The budget is checked first, and counts only for a live session: any refusal
        # comes after the caller was found live.
        _caller_found(call)
        scope, call.window = limits.refusal(request, error)
        log.warning(
            "rate_limited", limit=str(error.limit.limit) if error.limit else None, scope=scope
        )
        metrics.RATE_LIMIT_REJECTIONS.labels(limit=scope).inc()
        if request.url.path == "/login":
            metrics.LOGIN_ATTEMPTS.labels(outcome="limited").inc()
        raise RateLimited(
            f"Rate limit exceeded: {error.detail}",
            headers={"Retry-After": call.window.retry_after()},
        ) from None
    _caller_found(call)
    call.window = limits.window(request, names)


def _caller_found(call: Call) -> None:
    if call.claims is not None:
        call.principal = Principal(call.claims.user_id, call.claims.session_id)
