"""The one object a request's steps share. The ASGI step (step2_asgi) creates it and keeps
it in the request's state; every later step reads and fills it: nothing else about a
request is handed from one step to another."""

import math
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from db.models import User
from sessions.tokens import AccessClaims


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user, through one live session."""

    user_id: int
    session_id: str


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


@dataclass(frozen=True, slots=True)
class AccountLookup:
    """The account a login's email reaches (`user` None: no account), looked up once."""

    user: User | None


@dataclass(slots=True)
class Call:
    request_id: str
    # The socket peer, or what a trusted proxy said (uvicorn --forwarded-allow-ips).
    client_ip: str
    # The bearer token's claims once its signature and claims verify (step4_auth); its
    # session is not known to be live until the budget is spent (step5_budget).
    claims: AccessClaims | None = None
    # The caller, once the token's session is known to be live.
    principal: Principal | None = None
    # The validated request body, which some limits are keyed by (the login's email).
    body: Any = None
    # The canonical email that keys the account's limits, once looked up.
    account_key: str | None = None
    # The account a login's email reaches, when the login sent a device token: looked up
    # to check the token, and reused by the login itself.
    login_account: AccountLookup | None = None
    # The device a valid device token of that account names (service.limits.policy).
    device_id: str | None = None
    # The rate-limit window the response reports (X-RateLimit-*).
    window: Window | None = None
    # The budget has been spent for this request (by its route or its 401/422 answer).
    admitted: bool = False

    @staticmethod
    def of(request: Request) -> "Call":
        call: Call = request.state.call
        return call
