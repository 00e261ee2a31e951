"""Every rate limit of the service, decided by SlowAPI's Limiter, counted in Redis
(`service.limits.storage`) so that every worker and replica shares the counters.

A request's limits form a set, spent in one SlowAPI check (its decorator checks a request
once), budget first:

- `request`: the budget (`RATE_LIMIT`), one per client across every route, keyed by the
  user of a live session, else by the client IP. Every set but `revocation` includes it.
- `registration`: `REGISTER_RATE_LIMIT` per client IP.
- `revocation` (logout, logout everywhere, ending a session): `REVOKE_RATE_LIMIT` per
  session instead of the budget, so a thief spending the owner's budget never keeps the
  owner from revoking the thief's session.
- `password_guess`: a password checked against an account (a login, or the current
  password on an account route). `LOGIN_RATE_LIMIT` per client IP and account, always.
  `LOGIN_ACCOUNT_RATE_LIMIT` per account from every client together, except a client
  the account knows, so that guesses spread over many addresses never lock its owner
  out: one that signed in to it before from the same address (limited by address alone),
  or that presents a valid device token of the account (limited by that device's own
  `LOGIN_DEVICE_RATE_LIMIT`, away from its known addresses). Every attempt counts, and
  the account's counters are keyed by its credentials version, so a password reset
  starts them afresh.
- `reset_mail`: `PASSWORD_RESET_RATE_LIMIT` per client IP and per address.
- `code_guess`: a second-factor code checked against an account (the login's second step,
  confirming an enrolment): `MFA_RATE_LIMIT` per account, from every client together.
- `password_and_code`: a password and, when the account has the second factor on, a code,
  checked by one request (a password change, an account deletion, turning the factor off,
  new recovery codes): the rules of `password_guess` and of `code_guess` in one check,
  since a request gets one.
- `verification_mail`: `EMAIL_VERIFICATION_RATE_LIMIT` per client IP and per address (a
  verification mail sent again).

The first three are spent when the request is admitted (service.edge.admission). The
others are keyed by what a service finds (the account, its device), so the service spends
them through `Attempts` before the work they limit (service/services/attempts.py).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import Request
from limits import RateLimitItem, parse
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded

from service import metrics
from service.errors import RateLimited
from service.limits.storage import SCHEME, Hit, recording
from service.logging import get_logger
from service.services.attempts import CodeGuess, MailRequest, PasswordAndCode, PasswordGuess

T = TypeVar("T")
log = get_logger("service")
RESET_REFUSAL = (
    "{rate}. The reset links already mailed still work until they expire: use the newest "
    "one, or wait before asking again"
)


@dataclass(frozen=True, slots=True)
class Window:
    """A rate limit's current window, as the X-RateLimit-* headers report it."""

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


class Subject(Protocol):
    """What a request's limits are keyed by, and where its window goes: the edge's Call."""

    @property
    def client_ip(self) -> str: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def session_id(self) -> str | None: ...

    # What the service found for an attempt (PasswordGuess, MailRequest...), if any.
    attempt: Any
    window: Window | None
    # Whether the request's one SlowAPI check has been made.
    spent: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit: its rate, its scope (the counter's name) and what keys it."""

    scope: str
    rate: RateLimitItem
    key: Callable[[Subject], str]
    exempt: Callable[[Subject], bool] | None = None
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class LimitSet:
    name: str
    rules: tuple[Rule, ...]
    # Keyed by what a service finds: spent by that service, through Attempts.
    by_service: bool = False


def _caller(subject: Subject) -> str:
    return f"user:{subject.user_id}" if subject.user_id is not None else f"ip:{subject.client_ip}"


def _client(subject: Subject) -> str:
    return f"ip:{subject.client_ip}"


def _session(subject: Subject) -> str:
    return f"session:{subject.session_id}" if subject.session_id else _client(subject)


def _guess(subject: Subject) -> PasswordGuess:
    attempt = subject.attempt
    guess: PasswordGuess = attempt.password if isinstance(attempt, PasswordAndCode) else attempt
    return guess


def _code(subject: Subject) -> CodeGuess:
    attempt = subject.attempt
    code: CodeGuess = attempt.code if isinstance(attempt, PasswordAndCode) else attempt
    return code


def _mail(subject: Subject) -> MailRequest:
    mail: MailRequest = subject.attempt
    return mail


class RateLimits:
    def __init__(
        self,
        *,
        client: Any,
        guard: Callable[[], Any],
        subject_of: Callable[[Request], Subject],
        budget: str,
        revoke: str,
        register: str,
        login: str,
        login_account: str,
        login_device: str,
        password_reset: str,
        mfa: str,
        email_verification: str = "5/hour",
    ) -> None:
        self._subject_of = subject_of
        self.limiter = Limiter(
            key_func=lambda request: _caller(subject_of(request)),
            storage_uri=f"{SCHEME}://",
            storage_options={"client": client, "guard": guard},  # type: ignore[dict-item]
            strategy="fixed-window",
            # The edge renders X-RateLimit-* from what the hits answered (Window).
            headers_enabled=False,
        )
        verification = parse(email_verification)
        reset = parse(password_reset)
        reset_refusal = RESET_REFUSAL.format(rate=reset)
        budget_rule = Rule("budget", parse(budget), _caller)
        password_rules = (
            Rule("login", parse(login), lambda s: f"{_client(s)}:{_guess(s).email}"),
            Rule(
                "login-account",
                parse(login_account),
                lambda s: f"account:{_guess(s).account}",
                exempt=lambda s: _guess(s).trusted,
            ),
            Rule(
                "login-device",
                parse(login_device),
                lambda s: f"device:{_guess(s).account}:{_guess(s).device}",
                exempt=lambda s: _guess(s).device is None or _guess(s).known_client,
            ),
        )
        # Not keyed by the credentials version: a password reset leaves the factor on, and
        # whoever guesses codes with it.
        code_rule = Rule(
            "mfa",
            parse(mfa),
            lambda s: f"account:{_code(s).account}",
            exempt=lambda s: _code(s).account is None,
        )
        sets = [
            LimitSet("request", (budget_rule,)),
            LimitSet("registration", (budget_rule, Rule("register", parse(register), _client))),
            LimitSet("revocation", (Rule("revoke", parse(revoke), _session),)),
            LimitSet("password_guess", (budget_rule, *password_rules), by_service=True),
            LimitSet("code_guess", (budget_rule, code_rule), by_service=True),
            LimitSet(
                "password_and_code", (budget_rule, *password_rules, code_rule), by_service=True
            ),
            LimitSet(
                "reset_mail",
                (
                    budget_rule,
                    Rule("password-reset-ip", reset, _client, refusal=reset_refusal),
                    Rule(
                        "password-reset-email",
                        reset,
                        lambda s: f"email:{_mail(s).email}",
                        refusal=reset_refusal,
                    ),
                ),
                by_service=True,
            ),
            LimitSet(
                "verification_mail",
                (
                    budget_rule,
                    Rule("verification-mail-ip", verification, _client),
                    Rule(
                        "verification-mail-email", verification, lambda s: f"email:{_mail(s).email}"
                    ),
                ),
                by_service=True,
            ),
        ]
        self.sets = {limit_set.name: limit_set for limit_set in sets}
        self._doors = {limit_set.name: self._door(limit_set) for limit_set in sets}

    def spend(self, request: Request, name: str, work: Callable[[], T]) -> T:
        """Spend the set `name` in one SlowAPI check, then run `work`, the one thing the
        set guards (RateLimited, 429, instead when a limit refuses). The request's window
        is the one closest to refusing, among those the check spent."""
        limit_set, subject = self.sets[name], self._subject_of(request)
        # SlowAPI would skip a second check of the same request without a word.
        assert not subject.spent, "a request's limits are spent once"
        subject.spent = True
        with recording() as hits:
            try:
                result: T = self._doors[name](request, work)
            except RateLimitExceeded as refused:
                raise self._refusal(limit_set, subject, hits, refused) from None
            except BaseException:
                subject.window = _closest(limit_set, subject, hits)
                raise
        subject.window = _closest(limit_set, subject, hits)
        return result

    def _door(self, limit_set: LimitSet) -> Callable[[Request, Callable[[], Any]], Any]:
        def door(request: Request, work: Callable[[], Any]) -> Any:
            """What the set's limits guard, run once SlowAPI spent them."""
            return work()

        # SlowAPI files limits under the decorated function's module and name: one name
        # per set, so that no set's limits mix with another's.
        door.__name__ = door.__qualname__ = f"spend_{limit_set.name}"
        limited: Callable[[Request, Callable[[], Any]], Any] = door
        # SlowAPI checks a function's limits in the order they were declared: the budget
        # first, then the limits that concern one account.
        for rule in limit_set.rules:
            limited = self.limiter.shared_limit(
                str(rule.rate),
                scope=rule.scope,
                key_func=self._keyed(rule.key),
                exempt_when=None if rule.exempt is None else self._keyed(rule.exempt),
                error_message=rule.refusal,
            )(limited)
        return limited

    def _keyed(self, function: Callable[[Subject], T]) -> Callable[[Request], T]:
        """A key function (or exemption) of the request, from one of its subject."""
        return lambda request: function(self._subject_of(request))

    def _refusal(
        self, limit_set: LimitSet, subject: Subject, hits: dict[str, Hit], error: RateLimitExceeded
    ) -> RateLimited:
        scope = error.limit.scope if error.limit is not None else None
        rule = next(rule for rule in limit_set.rules if rule.scope == scope)
        window = _window(rule, subject, hits) or Window(rule.rate.amount, 0, time.time() + 1)
        subject.window = window
        log.warning("rate_limited", limit=str(rule.rate), scope=rule.scope)
        metrics.RATE_LIMIT_REJECTIONS.labels(limit=rule.scope).inc()
        return RateLimited(
            f"Rate limit exceeded: {error.detail}", headers={"Retry-After": window.retry_after()}
        )


def _window(rule: Rule, subject: Subject, hits: dict[str, Hit]) -> Window | None:
    if rule.exempt is not None and rule.exempt(subject):
        return None
    # The key SlowAPI hit: limits' own key for this rule's key and scope.
    hit = hits.get(rule.rate.key_for(rule.key(subject), rule.scope))
    if hit is None:
        return None
    return Window(rule.rate.amount, max(0, rule.rate.amount - hit.count), hit.reset_at)


def _closest(limit_set: LimitSet, subject: Subject, hits: dict[str, Hit]) -> Window | None:
    windows = [w for rule in limit_set.rules if (w := _window(rule, subject, hits)) is not None]
    return min(windows, key=lambda w: (w.remaining, w.reset_at), default=None)
