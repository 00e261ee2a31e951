"""Every rate limit of the service, decided by SlowAPI's Limiter on the service's Redis.

- The budget (`RATE_LIMIT`): one per client across every route together, keyed by user
  when the request carries a token of a live session and by client IP otherwise. Every
  route built with `RateLimits.route_class` spends it; so does a request refused with 401
  or 422 (`spend_budget`).
- Login (`LOGIN_RATE_LIMIT` per client IP + email, `LOGIN_ACCOUNT_RATE_LIMIT` failed logins
  per account from all clients) and registration (`REGISTER_RATE_LIMIT` per IP): SlowAPI
  decorators on those routes, checked together with the budget.

SlowAPI's decorators run in the route's own worker thread, before the route's code. Its
header injection is off: it would read each window back from Redis; the storage below
answers those reads from the hit it just made, and the middleware renders the contract's
X-RateLimit-* headers from `request.state.rate_limit`.
"""

import functools
import inspect
import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from limits import parse
from limits.storage import RedisStorage
from redis import ConnectionPool
from slowapi import Limiter

from db.emails import canonical_email

Endpoint = Callable[..., Any]

# Windows seen by the hits of the current worker-thread call: {key: (count, reset at)}.
# Each call runs in a copy of the request's context, so nothing leaks between requests.
_windows: ContextVar[dict[str, tuple[int, float]]] = ContextVar("rate_limit_windows")


class SingleTripRedisStorage(RedisStorage):
    """limits' Redis storage, with `incr` returning the window's count and TTL in one
    script, so the `get`/`get_expiry` that follow in the same call need no round trip."""

    STORAGE_SCHEME = ["redis+singletrip"]  # noqa: RUF012 (limits registers the scheme)
    SCRIPT_INCR_WITH_TTL = """
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1]) * 1000
end
return {current, ttl}
"""

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self._incr_with_ttl = self.get_connection().register_script(
            self.SCRIPT_INCR_WITH_TTL.encode()
        )

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count, ttl_ms = self._incr_with_ttl([self.prefixed_key(key)], [expiry, amount])
        seen = _windows.get(None)
        if seen is None:
            seen = {}
            _windows.set(seen)
        seen[key] = (int(count), time.time() + int(ttl_ms) / 1000)
        return int(count)

    def get(self, key: str) -> int:
        seen = _windows.get(None)
        if seen is not None and key in seen:
            return seen[key][0]
        return int(super().get(key))

    def get_expiry(self, key: str) -> float:
        seen = _windows.get(None)
        if seen is not None and key in seen:
            return seen[key][1]
        return float(super().get_expiry(key))


@dataclass(frozen=True, slots=True)
class LimitState:
    """The window a response reports: the tightest limit SlowAPI checked, or the one hit."""

    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> list[tuple[bytes, bytes]]:
        """X-RateLimit-* as raw ASGI headers; Reset in epoch seconds, as GitHub sends it."""
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_at)).encode()),
        ]

    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.reset_at - time.time())))


def _key_function(key: Callable[[Request], str]) -> Callable[[Request], str]:
    """SlowAPI inspects a key function's signature on every hit, to see whether it takes
    the request; a signature computed once here is returned at once."""
    key.__signature__ = inspect.signature(key)  # type: ignore[attr-defined]
    return key


def client_ip(request: Request) -> str:
    # The socket peer, or what a trusted proxy said (uvicorn --forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


@_key_function
def caller_key(request: Request) -> str:
    """The user, when the request carries a token of a live session (`service.deps` sets
    the principal only then); otherwise the client IP, as for no token at all."""
    principal = getattr(request.state, "principal", None)
    return f"user:{principal.user_id}" if principal is not None else f"ip:{client_ip(request)}"


@_key_function
def _ip_key(request: Request) -> str:
    return f"ip:{client_ip(request)}"


LOGIN_ACCOUNT_SCOPE = "login-account"


def unauthenticated_request(request: Request) -> None:
    """What a request refused before its route ran still spends: the budget."""


class RateLimits:
    def __init__(
        self,
        *,
        connection_pool: ConnectionPool,
        budget: str,
        login: str,
        login_account: str,
        register: str,
        password_reset: str,
        canonical_email_of: Callable[[int], str | None],
    ) -> None:
        self._canonical_email_of = canonical_email_of
        self.limiter = Limiter(
            key_func=caller_key,
            storage_uri="redis+singletrip://",
            storage_options={"connection_pool": connection_pool},  # type: ignore[dict-item]
            strategy="fixed-window",
            headers_enabled=False,
        )
        self._budget = self.limiter.shared_limit(budget, scope="budget", key_func=caller_key)
        self._failed_login = parse(login_account)

        @_key_function
        def ip_and_account_key(request: Request) -> str:
            return f"ip:{client_ip(request)}:email:{self._account_email(request)}"

        @_key_function
        def account_key(request: Request) -> str:
            return f"email:{self._account_email(request)}"

        self._account_key = account_key
        shared = self.limiter.shared_limit
        per_ip_and_account = shared(login, scope="login", key_func=ip_and_account_key)
        # Every attempt counts as a failure until it succeeds (`forgive_failed_login`), so
        # attempts in flight count too and the check happens before any password hash.
        failed_per_account = shared(login_account, scope=LOGIN_ACCOUNT_SCOPE, key_func=account_key)
        # Every route that checks a password: /login, and the account routes that ask for
        # the current password. They share their buckets: a guess is a guess.
        self.password_guess: Callable[[Endpoint], Endpoint] = lambda f: per_ip_and_account(
            failed_per_account(f)
        )
        self.registration: Callable[[Endpoint], Endpoint] = shared(
            register, scope="register", key_func=_ip_key
        )
        reset_per_ip = shared(password_reset, scope="password-reset-ip", key_func=_ip_key)
        reset_per_email = shared(password_reset, scope="password-reset-email", key_func=account_key)
        self.password_reset: Callable[[Endpoint], Endpoint] = lambda f: reset_per_ip(
            reset_per_email(f)
        )
        self.spend_budget = self.enforced(unauthenticated_request)

    def enforced(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` with the budget, and whatever limits its own decorators add,
        checked by SlowAPI when it is called (in the worker thread), before it runs. Its
        validated `body`, if any, is what the login limits are keyed by."""
        checked = self._budget(endpoint)

        @functools.wraps(checked)
        def run(**arguments: Any) -> Any:
            request: Request = arguments["request"]
            request.state.body = arguments.get("body")
            try:
                return checked(**arguments)
            finally:
                self._remember_window(request)

        return run

    def forgive_failed_login(self, request: Request) -> None:
        """A password check that succeeded gives back the failure it was counted as."""
        self.limiter.limiter.hit(
            self._failed_login, self._account_key(request), LOGIN_ACCOUNT_SCOPE, cost=-1
        )

    def _account_email(self, request: Request) -> str:
        """The account a password guess is about, canonically: the submitted email, or
        the caller's own account on the routes that ask for its current password."""
        cached: str | None = getattr(request.state, "account_email", None)
        if cached is not None:
            return cached
        email = getattr(request.state.body, "email", None)
        if email is not None:
            account = canonical_email(str(email))
        else:
            user_id = request.state.principal.user_id
            account = self._canonical_email_of(user_id) or f"user:{user_id}"
        request.state.account_email = account
        return account

    def _remember_window(self, request: Request) -> None:
        current = getattr(request.state, "view_rate_limit", None)
        if current is None:
            return
        item, identifiers = current
        reset_at, remaining = self.limiter.limiter.get_window_stats(item, *identifiers)
        request.state.rate_limit = LimitState(item.amount, remaining, reset_at)
        _windows.set({})
