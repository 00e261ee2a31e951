"""Pure ASGI middleware: request id, limits on the request's headers and body, the Host
check, security headers, one access-log line and the request metrics per request, and a
JSON 500 for anything unexpected. No blocking I/O here: it runs on the event loop."""

import json
import re
import secrets
import time

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.logging import get_logger

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
access_log = get_logger("access")
error_log = get_logger("service")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SANE_REQUEST_ID.match(value):
            return str(value.decode())
    return secrets.token_hex(16)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


TOO_LARGE = "Request body too large"
HEADERS_TOO_LARGE = "Request headers too large: at most 16 KiB in total"
BAD_HOST = "Host not allowed"
# What every response carries unless it says otherwise: no content sniffing, and no cache
# keeps what is almost always a user's data or tokens.
_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"),)
_NO_STORE = (b"cache-control", b"no-store")
_BEARER_CHALLENGE = (b"www-authenticate", b"Bearer")


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
    added = list(_SECURITY_HEADERS)
    if b"cache-control" not in names:
        added.append(_NO_STORE)
    if status == 401 and b"www-authenticate" not in names:
        added.append(_BEARER_CHALLENGE)
    return headers + added


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int = 16 * 1024,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        # Empty: any Host.
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        request_id = _request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # Routes run in worker threads, where contextvars do not flow back: the caller
        # (service.deps) and the rate-limit window (service.ratelimit) are recorded in
        # the request state instead.
        state = scope.setdefault("state", {})
        status = 500
        response_started = False
        header = (REQUEST_ID_HEADER, request_id.encode())

        method = scope["method"]
        head = method == "HEAD"
        if head:
            # HEAD is GET without the body, on every GET route, and documented once here
            # rather than as an operation of its own on each of them.
            scope = {**scope, "method": "GET"}

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = _with_defaults([*message.get("headers", []), header], status)
                limit = state.get("rate_limit")
                if limit is not None:
                    headers += limit.headers()
                message["headers"] = headers
            await send(message)

        received = 0

        async def receive_within_limit() -> Message:
            # A chunked body is counted as it arrives; FastAPI re-raises an HTTPException
            # from body reading, so the exception handlers answer a JSON 413.
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
                # The server (service.http) refuses them sooner, while they arrive; this
                # holds when it runs with another HTTP implementation.
                await self._send_json(send_with_request_id, 431, {"detail": HEADERS_TOO_LARGE})
            elif self.allowed_hosts and not host_allowed(scope, self.allowed_hosts):
                await self._send_json(send_with_request_id, 400, {"detail": BAD_HOST})
            elif declared is not None and declared > self.max_body_bytes:
                # Answer at once; the body is never read.
                await self._send_json(send_with_request_id, 413, {"detail": TOO_LARGE})
            else:
                await self.app(scope, receive_within_limit, send_with_request_id)
        except Exception:  # noqa: BLE001 (the last resort: log it, answer JSON)
            error_log.exception("unhandled_error")
            if not response_started:
                body = {"detail": "Internal server error", "request_id": request_id}
                await self._send_json(send_with_request_id, 500, body)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            metrics.observe_request(method, getattr(route, "path", None), status, seconds)
            access_log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(seconds * 1000, 2),
                client_ip=scope["client"][0] if scope.get("client") else None,
                user_id=principal.user_id if (principal := state.get("principal")) else None,
                session_id=principal.session_id if principal else None,
            )

    @staticmethod
    async def _send_json(send: Send, status: int, content: dict[str, str]) -> None:
        body = json.dumps(content).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
