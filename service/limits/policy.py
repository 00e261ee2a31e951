"""Every rate limit of the service, by name, decided by SlowAPI's Limiter on the service's
Redis (counted in `service.limits.storage`).

- The budget (`RATE_LIMIT`): one per client across every route together, keyed by user when
  the request carries a token of a live session and by client IP otherwise. Every route
  spends it, and so does a request refused with 401, 415 or 422.
- `password_guess`: every route that checks a password (/login, and the account routes that
  ask for the current one). `LOGIN_RATE_LIMIT` per client IP and account, and
  `LOGIN_ACCOUNT_RATE_LIMIT` failures per account from every client together: each attempt
  counts as a failure until it succeeds (`forgive`), so attempts in flight count too and
  the check comes before any password hash. A login that presents a valid device token of
  the account (sessions.devices) is exempt from the account-wide limit (so that guesses
  spread over many clients never lock the owner out) and counts against
  `LOGIN_DEVICE_RATE_LIMIT`, that device's own failures, instead. A successful password
  reset clears the account's failures (`clear_login_failures`).
- `registration`: `REGISTER_RATE_LIMIT` per client IP.
- `password_reset`: `PASSWORD_RESET_RATE_LIMIT` per client IP and per address; its 429
  says that the links already mailed still work.

A route names the limits it adds to the budget (service.edge.step3_route); `check` runs
SlowAPI's shared limits for that set, budget first, in the calling thread.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded

from db.emails import canonical_email
from db.models import User
from service.edge.call import AccountLookup, Call, Window
from service.limits.storage import STORAGES, session_budget_key
from sessions.devices import DeviceTokens
from sessions.keys import user_tag
from sessions.redis_client import Client, Topology
from sessions.store import SessionStore

KeyFunction = Callable[[Request], str]
Exemption = Callable[[Request], bool]
BUDGET = "budget"
LIMIT_NAMES = ("password_guess", "registration", "password_reset")
RESET_REFUSAL = (
    "{rate}. The reset links already mailed still work until they expire: use the newest "
    "one, or wait before asking again"
)


def _key_function(key: KeyFunction) -> KeyFunction:
    """SlowAPI inspects a key function's signature on every hit, to see whether it takes
    the request; a signature computed once here is returned at once."""
    key.__signature__ = inspect.signature(key)  # type: ignore[attr-defined]
    return key


@_key_function
def caller_key(request: Request) -> str:
    """The user of a verified token, with its session to be checked in the same round trip
    (service.limits.storage); the client IP when there is no such token, or its session
    turned out dead."""
    call = Call.of(request)
    if call.claims is not None:
        return session_budget_key(call.claims)
    return f"ip:{call.client_ip}"


@_key_function
def ip_key(request: Request) -> str:
    return f"ip:{Call.of(request).client_ip}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One SlowAPI shared limit: its rate, its counter's scope and its key."""

    rate: RateLimitItem
    scope: str
    key: KeyFunction
    # Counts attempts until they succeed: a success gives its count back.
    failures_only: bool = False
    # Whether the rule does not apply to a request (neither checked nor counted).
    exempt_when: Exemption | None = None
    # What the 429 says after "Rate limit exceeded: " (default: the rate).
    refusal: str | None = None

    def applies(self, request: Request) -> bool:
        return self.exempt_when is None or not self.exempt_when(request)


class RateLimits:
    def __init__(
        self,
        *,
        client: Client,
        topology: Topology,
        sessions: SessionStore,
        guard: Callable[[], Any],
        budget: str,
        login: str,
        login_account: str,
        login_device: str,
        register: str,
        password_reset: str,
        canonical_email_of: Callable[[int], str | None],
        account_of: Callable[[str], User | None],
        devices: DeviceTokens,
    ) -> None:
        self._canonical_email_of = canonical_email_of
        self._account_of = account_of
        self._devices = devices
        self._guard = guard
        self.limiter = Limiter(
            key_func=caller_key,
            storage_uri=f"{STORAGES[topology].STORAGE_SCHEME[0]}://",
            storage_options={"client": client, "sessions": sessions, "guard": guard},  # type: ignore[dict-item]
            strategy="fixed-window",
            # Our storage answers the window reads from the hit itself; the edge renders
            # the headers from them (service.edge.step2_asgi).
            headers_enabled=False,
        )

        @_key_function
        def account(request: Request) -> str:
            return f"email:{self._account_email(request)}"

        @_key_function
        def ip_and_account(request: Request) -> str:
            return f"ip:{Call.of(request).client_ip}:{account(request)}"

        @_key_function
        def device(request: Request) -> str:
            # Only asked when the request has a valid device token (`device_exempt`).
            call = Call.of(request)
            assert call.login_account is not None and call.login_account.user is not None
            return f"device:{user_tag(call.login_account.user.id)}:{call.device_id}"

        def with_device(request: Request) -> bool:
            return self._device(request) is not None

        def without_device(request: Request) -> bool:
            return self._device(request) is None

        self._budget = Rule(parse(budget), BUDGET, caller_key)
        self._account_failures = Rule(
            parse(login_account), "login-account", account, True, with_device
        )
        reset_rate = parse(password_reset)
        reset_refusal = RESET_REFUSAL.format(rate=reset_rate)
        self._rules: dict[str, tuple[Rule, ...]] = {
            "password_guess": (
                Rule(parse(login), "login", ip_and_account),
                self._account_failures,
                Rule(parse(login_device), "login-device", device, True, without_device),
            ),
            "registration": (Rule(parse(register), "register", ip_key),),
            "password_reset": (
                Rule(reset_rate, "password-reset-ip", ip_key, refusal=reset_refusal),
                Rule(reset_rate, "password-reset-email", account, refusal=reset_refusal),
            ),
        }

    def check(self, request: Request, names: tuple[str, ...]) -> None:
        """Spend the budget and the limits `names` add, through SlowAPI: RateLimitExceeded
        when one refuses, SessionNotLive (nothing spent) when the caller's token names a
        session that has ended."""
        self._checker(names)(request=request)

    def window(self, request: Request, names: tuple[str, ...]) -> Window:
        """The window of the limit closest to refusing, among those `check` just spent."""
        windows = [self._window(request, rule) for rule in self._applied(names, request)]
        return min(windows, key=lambda window: (window.remaining, window.reset_at))

    def refusal(self, request: Request, error: RateLimitExceeded) -> tuple[str, Window]:
        """The scope of the limit that refused, and its window."""
        limit = error.limit
        assert limit is not None
        rules = [self._budget, *(rule for rules in self._rules.values() for rule in rules)]
        rule = next(rule for rule in rules if rule.scope == limit.scope)
        return rule.scope, self._window(request, rule)

    def forgive(self, request: Request, names: tuple[str, ...]) -> None:
        """A password check that succeeded gives back the failure it was counted as."""
        for rule in self._applied(names, request):
            if rule.failures_only:
                self.limiter.limiter.hit(rule.rate, rule.key(request), rule.scope, cost=-1)

    def clear_login_failures(self, email: str) -> None:
        """Forget the failed logins counted against the account with this canonical email
        (a successful password reset: the owner is back in control)."""
        rule = self._account_failures
        with self._guard():
            self.limiter.limiter.clear(rule.rate, f"email:{email}", rule.scope)

    def validate(self, names: tuple[str, ...]) -> None:
        unknown = set(names) - self._rules.keys()
        if unknown:
            raise ValueError(f"unknown rate limits {sorted(unknown)}; known: {LIMIT_NAMES}")
        self._checker(names)

    def _applied(self, names: tuple[str, ...], request: Request | None = None) -> list[Rule]:
        """The rules of `names`, budget first; with a request, those that apply to it."""
        rules = [self._budget, *(rule for name in names for rule in self._rules[name])]
        if request is None:
            return rules
        return [rule for rule in rules if rule.applies(request)]

    def _window(self, request: Request, rule: Rule) -> Window:
        stats = self.limiter.limiter.get_window_stats(rule.rate, rule.key(request), rule.scope)
        return Window(rule.rate.amount, stats.remaining, stats.reset_time)

    @functools.cache  # noqa: B019 (one per set of names, for the life of the app)
    def _checker(self, names: tuple[str, ...]) -> Callable[..., None]:
        def check(request: Request) -> None:
            """SlowAPI's decorators check the limits before this runs; it does nothing."""

        # SlowAPI files limits under the function's qualified name: one per set of names.
        check.__name__ = check.__qualname__ = "_".join(("spend", BUDGET, *names))
        checked: Callable[..., None] = check
        # The decorator applied first is evaluated first: the budget, whose hit also
        # checks the session, before any limit keyed by the caller's account.
        for rule in self._applied(names):
            shared = self.limiter.shared_limit(
                str(rule.rate),
                scope=rule.scope,
                key_func=rule.key,
                exempt_when=rule.exempt_when,
                error_message=rule.refusal,
            )
            checked = shared(checked)
        return checked

    def _device(self, request: Request) -> str | None:
        """The device a login's valid device token names (None: no token, or not a valid
        one of this account). The account is looked up once, and only when a token came."""
        call = Call.of(request)
        token = getattr(call.body, "device_token", None)
        if token is None:
            return None
        if call.login_account is None:
            user = self._account_of(self._account_email(request))
            call.login_account = AccountLookup(user)
            if user is not None:
                call.device_id = self._devices.device_of(
                    token, user_id=user.id, email=user.email_canonical
                )
        return call.device_id

    def _account_email(self, request: Request) -> str:
        """The account a password guess or reset is about, canonically: the submitted
        email, or the caller's own account on the routes that ask for its password."""
        call = Call.of(request)
        if call.account_key is None:
            email = getattr(call.body, "email", None)
            if email is not None:
                call.account_key = canonical_email(str(email))
            else:
                assert call.claims is not None, "an account limit on a route without one"
                user_id = call.claims.user_id
                call.account_key = self._canonical_email_of(user_id) or f"user:{user_id}"
        return call.account_key
