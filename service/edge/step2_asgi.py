"""Step 2: the ASGI middleware, on the event loop (no blocking I/O here). It creates the
request's Call and, around everything after it:

- the request id (the client's sane X-Request-ID, else a new one), bound to every log line;
- the bounds on the request's headers (431) and body (413, never read beyond 1 MiB);
- the Host check (ALLOWED_HOSTS, 400) and CORS (edge/cors.py, preflights answered here);
- HEAD served as GET without the body;
- the headers every response carries (request id, nosniff, no-store by default, the
  Bearer challenge on 401, X-RateLimit-* from the Call's window);
- one access-log line and the request metrics per request;
- the last resort: a JSON 500 with the request id for anything unexpected.
"""

import itertools
import json
import re
import secrets
import time

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.edge.call import Call
from service.edge.cors import Cors
from service.logging import get_logger

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# New ids: unique per process (a random prefix) and cheap (a counter), not secret.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()
access_log = get_logger("access")
error_log = get_logger("service")

TOO_LARGE = "Request body too large"
HEADERS_TOO_LARGE = "Request headers too large: at most 16 KiB in total"
BAD_HOST = "Host not allowed"
# What every response carries unless it says otherwise: no content sniffing, and no cache
# keeps what is almost always a user's data or tokens.
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_BEARER_CHALLENGE = (b"www-authenticate", b"Bearer")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SANE_REQUEST_ID.match(value):
            return str(value.decode())
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _header_bytes(scope: Scope) -> int:
    # As on the wire: "name: value\r\n".
    return sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def host_allowed(scope: Scope, allowed: frozenset[str]) -> bool:
    """Whether the request's Host (without its port) is one of `allowed`, or a subdomain
    of an entry written `*.example.com`."""
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    if host is None:
        return False
    name = host.decode("latin-1").lower()
    name = name.rsplit(":", 1)[0] if not name.endswith("]") else name
    if name in allowed:
        return True
    return any(entry.startswith("*.") and name.endswith(entry[1:]) for entry in allowed)


def _with_defaults(headers: list[tuple[bytes, bytes]], status: int) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    added = [_NOSNIFF]
    if b"cache-control" not in names:
        added.append(_NO_STORE)
    if status == 401 and b"www-authenticate" not in names:
        added.append(_BEARER_CHALLENGE)
    return headers + added


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int = 16 * 1024,
        allowed_hosts: frozenset[str] = frozenset(),
        cors_origins: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        # Empty: any Host.
        self.allowed_hosts = allowed_hosts
        self.cors = Cors(cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        client = scope.get("client")
        call = Call(request_id=_request_id(scope), client_ip=client[0] if client else "unknown")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=call.request_id)
        scope.setdefault("state", {})["call"] = call
        status = 500
        response_started = False
        cors_headers, preflight = self.cors.answer(scope)
        extra = [(REQUEST_ID_HEADER, call.request_id.encode()), *(cors_headers or ())]

        method = scope["method"]
        head = method == "HEAD"
        if head:
            # HEAD is GET without the body, on every GET route, and documented once here
            # rather than as an operation of its own on each of them.
            scope = {**scope, "method": "GET"}

        async def send_with_defaults(message: Message) -> None:
            nonlocal status, response_started
            if head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = _with_defaults([*message.get("headers", []), *extra], status)
                if call.window is not None:
                    headers += call.window.headers()
                message["headers"] = headers
            await send(message)

        received = 0

        async def receive_within_limit() -> Message:
            # A chunked body is counted as it arrives; FastAPI re-raises an HTTPException
            # from body reading, so the error step answers a JSON 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(status_code=413, detail=TOO_LARGE)
            return message

        try:
            declared = _declared_length(scope)
            if _header_bytes(scope) > self.max_header_bytes:
                # The server (step1_protocol) refuses them sooner, while they arrive; this
                # holds when it runs with another HTTP implementation.
                await _send_json(send_with_defaults, 431, {"detail": HEADERS_TOO_LARGE})
            elif self.allowed_hosts and not host_allowed(scope, self.allowed_hosts):
                await _send_json(send_with_defaults, 400, {"detail": BAD_HOST})
            elif declared is not None and declared > self.max_body_bytes:
                # Answer at once; the body is never read.
                await _send_json(send_with_defaults, 413, {"detail": TOO_LARGE})
            elif preflight:
                headers = [(b"content-length", b"0")]
                await send_with_defaults(
                    {"type": "http.response.start", "status": 204, "headers": headers}
                )
                await send_with_defaults({"type": "http.response.body", "body": b""})
            else:
                await self.app(scope, receive_within_limit, send_with_defaults)
        except Exception:  # noqa: BLE001 (the last resort: log it, answer JSON)
            error_log.exception("unhandled_error")
            if not response_started:
                body = {"detail": "Internal server error", "request_id": call.request_id}
                await _send_json(send_with_defaults, 500, body)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            metrics.observe_request(method, getattr(route, "path", None), status, seconds)
            principal = call.principal
            access_log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(seconds * 1000, 2),
                client_ip=call.client_ip if client else None,
                user_id=principal.user_id if principal else None,
                session_id=principal.session_id if principal else None,
            )


async def _send_json(send: Send, status: int, content: dict[str, str]) -> None:
    body = json.dumps(content).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
