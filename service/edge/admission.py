"""Admission: who is calling, is their session live, may they. One decision per request,
made in the request's worker thread before its endpoint runs (or before a malformed
request is refused), in this order:

1. the bearer token: signature and claims (joserfc, HS256 only);
2. its session: an explicit call to the session store (live, and holding the token's
   `jti`); a token whose session is not live counts as no token;
3. the request's rate limits, in one SlowAPI check (service/limits/policy.py): the budget,
   keyed by the user of a live session or else the client IP, with the limits its route
   adds;
4. the caller of a protected route without a live session: 401.

The caller (`Call.principal`) and the window to report (`Call.window`) are known after it.

SlowAPI checks a request once, so a route whose limits are keyed by what its service finds
(a login's account and device) leaves step 3 to that service, which spends the same check
through `Attempts` once it knows them, before the work they limit. A caller refused at
step 4 or a malformed request never reaches a service: its budget is spent here.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from starlette.requests import Request

from service.edge.call import Call, Principal
from service.errors import NotAuthenticated
from service.limits.policy import RateLimits
from service.services.attempts import CodeGuess, MailRequest, PasswordAndCode, PasswordGuess
from sessions.store import SessionStore
from sessions.tokens import InvalidTokenError, TokenCodec

T = TypeVar("T")
INVALID_TOKEN = "Invalid or expired token"  # noqa: S105 (a message, not a secret)


class Admission:
    def __init__(
        self,
        *,
        tokens: TokenCodec,
        sessions: SessionStore,
        limits: RateLimits,
        guard: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._limits = limits
        # The Redis circuit breaker, once around the session check and the limits' hits.
        self._guard = guard

    def admit(self, request: Request, *, limits: str, public: bool, malformed: bool) -> None:
        """Let the request in, or raise NotAuthenticated (401) or RateLimited (429). For a
        `malformed` request, only what answers sooner than its 4xx: its budget and 401."""
        with self._guard():
            self._admit(request, limits, public, malformed)

    def _admit(self, request: Request, limits: str, public: bool, malformed: bool) -> None:
        call = Call.of(request)
        token = bearer_token(request)
        call.principal = self._caller(token)
        refused = call.principal is None and not public
        if malformed or refused:
            limits = "request"
        elif self._limits.sets[limits].by_service:
            return  # its service spends them (Attempts), with what it finds

        def enter() -> None:
            if refused:
                raise NotAuthenticated(INVALID_TOKEN if token is not None else None)

        self._limits.spend(request, limits, enter)

    def attempts(self, request: Request) -> "RequestAttempts":
        return RequestAttempts(self._limits, request)

    def _caller(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        try:
            claims = self._tokens.verify(token)
        except InvalidTokenError:
            return None
        if not self._sessions.authenticate(
            user_id=claims.user_id, session_id=claims.session_id, jti=claims.jti
        ):
            return None
        return Principal(claims.user_id, claims.session_id)


class RequestAttempts:
    """`Attempts` for one request: an attempt spends the request's limits, keyed by what
    the service found, then runs (service.services.attempts)."""

    def __init__(self, limits: RateLimits, request: Request) -> None:
        self._limits = limits
        self._request = request

    def password_guess(self, guess: PasswordGuess, check: Callable[[], T]) -> T:
        return self._spend("password_guess", guess, check)

    def reset_mail(self, mail: MailRequest, send: Callable[[], T]) -> T:
        return self._spend("reset_mail", mail, send)

    def code_guess(self, guess: CodeGuess, check: Callable[[], T]) -> T:
        return self._spend("code_guess", guess, check)

    def password_and_code(self, guess: PasswordAndCode, check: Callable[[], T]) -> T:
        return self._spend("password_and_code", guess, check)

    def verification_mail(self, mail: MailRequest, send: Callable[[], T]) -> T:
        return self._spend("verification_mail", mail, send)

    def _spend(self, limits: str, attempt: object, work: Callable[[], T]) -> T:
        Call.of(self._request).attempt = attempt
        return self._limits.spend(self._request, limits, work)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
