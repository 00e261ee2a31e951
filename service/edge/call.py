"""The one object a request's parts share, and the request as an endpoint sees it.

The request-id middleware creates the Call and keeps it in the request's ASGI state;
admission fills in the caller and the rate-limit window; the default-headers middleware
and the access log read them. Nothing else about a request is handed from one part to
another.
"""

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection, Request

from service.limits.policy import Window
from service.services.accounts import ClientInfo

if TYPE_CHECKING:
    from service.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user, through one live session."""

    user_id: int
    session_id: str


@dataclass(slots=True)
class Call:
    request_id: str
    # The socket peer, or what a trusted proxy said (uvicorn --forwarded-allow-ips).
    client_ip: str
    # The caller, once admission found the token's session live.
    principal: Principal | None = None
    # What a service found for the attempt it is about to make (service.services.attempts).
    attempt: Any = None
    # The rate-limit window the response reports (X-RateLimit-*).
    window: Window | None = None
    # The request's one rate-limit check has been made.
    spent: bool = False

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id if self.principal else None

    @property
    def session_id(self) -> str | None:
        return self.principal.session_id if self.principal else None

    @staticmethod
    def of(request: Request) -> "Call":
        call: Call = request.scope["state"]["call"]
        return call


class ApiRequest(Request):
    """A request to a route of the API, as its endpoint sees it (FastAPI's custom Request
    class, made by service.edge.route): a Starlette request, plus its caller and client.
    An endpoint runs only once admission let the request in, so a protected route's
    request always has a caller."""

    @property
    def call(self) -> Call:
        return Call.of(self)

    @property
    def caller(self) -> Principal:
        principal = self.call.principal
        if principal is None:
            raise LookupError("no caller: the route is public")
        return principal

    @property
    def user_id(self) -> int:
        return self.caller.user_id

    @property
    def session_id(self) -> str:
        return self.caller.session_id

    async def json(self) -> Any:
        """The body as JSON, strictly: UTF-8 only (JSON's own rule, RFC 8259; Python's
        parser would take UTF-16 and UTF-32 too) and no key twice in one object (which
        one would win is not for the client to guess). Either is malformed input: 422."""
        if not self._read:
            text = (await self.body()).decode("utf-8")
            self._parsed = json.loads(text, object_pairs_hook=_without_repeated_keys)
            self._read = True
        return self._parsed

    _parsed: Any = None
    _read = False

    @property
    def client_info(self) -> ClientInfo:
        """The client as a session records it. The User-Agent is shown to the user and
        printed by the admin CLI: read as UTF-8 (Starlette's Latin-1 would turn UTF-8 into
        mojibake and bytes 0x80-0x9F into C1 control characters), any byte that is not
        UTF-8 and any control character replaced with U+FFFD, at most 512 characters."""
        raw = next((value for name, value in self.scope["headers"] if name == b"user-agent"), b"")
        # 4 bytes at most per character: enough for 512 of them, without decoding 16 KiB.
        text = raw[: 4 * 512].decode("utf-8", errors="replace")
        # C0 and C1 control characters and DEL: what a terminal would act on.
        user_agent = re.sub("[\x00-\x1f\x7f-\x9f]", "\ufffd", text)[:512]
        return ClientInfo(ip=self.call.client_ip, user_agent=user_agent)


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    parsed = dict(pairs)
    if len(parsed) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        # FastAPI answers a JSONDecodeError as a 422 naming its message.
        raise json.JSONDecodeError(f"Duplicate key {key!r} in an object", "", 0)
    return parsed


def runtime_of(connection: HTTPConnection) -> "Runtime":
    """The worker's long-lived objects, which the app's lifespan keeps in its state."""
    runtime: Runtime = connection.app.state.runtime
    return runtime
