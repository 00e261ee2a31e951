"""The ASGI middleware, on the event loop (no blocking I/O here): small parts, each one job.
`STACK` is their order, outermost first; service.main adds them in it.
"""

import functools
import itertools
import json
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

import structlog
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.edge.call import ApiRequest, Call, runtime_of
from service.edge.circuits import CircuitOpen
from service.edge.cors import Cors
from service.errors import RateLimited
from service.logging import get_logger

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# New ids: unique per process (a random prefix) and cheap (a counter), not secret.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()
access_log = get_logger("access")
error_log = get_logger("service")
TOO_LARGE = "Request body too large"
BAD_HOST = "Host not allowed"
LOGGED_PATH_CHARACTERS = 1024
STORE_DOWN = "Session store unavailable"
# Out of every budget: what probes and the operator's Prometheus ask for.
UNBUDGETED = frozenset({"/health/live", "/health/ready", "/metrics"})
# What every response carries unless it says otherwise: no content sniffing, and no cache
# keeps what is almost always a user's data or tokens.
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_BEARER_CHALLENGE = (b"www-authenticate", b"Bearer")
Headers = list[tuple[bytes, bytes]]


class RequestIdentity:
    """Creates the request's Call: its id (the client's sane X-Request-ID, else a new one),
    bound to every log line written while it is served, and its client address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        client = scope.get("client")
        call = Call(request_id=_request_id(scope), client_ip=client[0] if client else "unknown")
        scope.setdefault("state", {})["call"] = call
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=call.request_id)
        await self.app(scope, receive, send)


class AccessLog:
    """One log line and the request metrics per request, whatever happens inside."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled series, looked up once each: prometheus-client's `labels()` takes a
        # lock and checks the labels on every call, half the cost of a request's metrics
        # (docs/performance.md). Bounded: the app's methods, route templates and statuses.
        self._series: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, method, status = time.perf_counter(), scope["method"], 500

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            key = (method, getattr(route, "path", None), status)
            if (series := self._series.get(key)) is None:
                series = self._series[key] = metrics.request_series(*key)
            series[0].inc()
            series[1].observe(seconds)
            call: Call = scope["state"]["call"]
            access_log.info(
                "request",
                method=method,
                # A path can fill a 16 KiB head: the log keeps its start.
                path=scope["path"][:LOGGED_PATH_CHARACTERS],
                status=status,
                duration_ms=round(seconds * 1000, 2),
                client_ip=call.client_ip,
                user_id=call.user_id,
                session_id=call.session_id,
            )


class DefaultHeaders:
    """The headers every response carries: the request id, nosniff, no-store unless the
    response says otherwise, the Bearer challenge on a 401, and X-RateLimit-* for the
    window admission reported."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        call: Call = scope["state"]["call"]

        async def send_with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_defaults(message, call)
            await send(message)

        await self.app(scope, receive, send_with_defaults)


class LastResort:
    """Anything unexpected: logged with its traceback, and answered as a JSON 500 with the
    request id, unless the response had started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_seen(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        except Exception:  # noqa: BLE001 (the last resort: log it, answer JSON)
            error_log.exception("unhandled_error")
            if not started:
                call: Call = scope["state"]["call"]
                body = {"detail": "Internal server error", "request_id": call.request_id}
                await send_json(send, 500, body)


class AllowedHosts:
    """ALLOWED_HOSTS: a request whose Host is not listed is a 400 (any Host when empty)."""

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not host_allowed(scope, self.allowed):
            return await send_json(send, 400, {"detail": BAD_HOST})
        await self.app(scope, receive, send)


class BodyBound:
    """A body over `max_bytes` is a 413 and is read no further: a declared length at once,
    a chunked body as it arrives (FastAPI re-raises the HTTPException from reading it)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared, chunked = _framing(scope)
        if declared is not None and declared > self.max_bytes:
            return await send_json(send, 413, {"detail": TOO_LARGE})
        if not chunked:
            # Nothing beyond the declared length is read (none at all without one).
            return await self.app(scope, receive, send)
        received = 0

        async def receive_within_bound() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=TOO_LARGE)
            return message

        await self.app(scope, receive_within_bound, send)


class CorsAnswers:
    """CORS for the origins in CORS_ORIGINS (service.edge.cors), preflights answered here."""

    def __init__(self, app: ASGIApp, *, origins: frozenset[str]) -> None:
        self.app = app
        self.cors = Cors(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers, preflight = self.cors.answer(scope)
        if headers is None:
            return await self.app(scope, receive, send)
        cors_headers: Headers = headers

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors_headers]
            await send(message)

        if preflight:
            return await send_json(send_with_cors, 204, None)
        await self.app(scope, receive, send_with_cors)


class UnroutedBudget:
    """A request no API route admitted (an unmatched path, a method a path does not take,
    the docs and their assets) spends the budget like any other, on its way out: admitted
    in the request pool before its answer is sent, a 429 instead when the budget is
    spent. Health and metrics stay out of the budget."""

    def __init__(self, app: ASGIApp, *, exempt: frozenset[str]) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            return await self.app(scope, receive, send)
        call: Call = scope["state"]["call"]
        refused = False

        async def send_once_admitted(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and not call.spent:
                try:
                    await admit_unrouted(scope, receive)
                except RateLimited as limited:
                    refused = True
                    await send_json(send, 429, {"detail": limited.detail}, limited.headers)
                except (RedisError, CircuitOpen):
                    # The budget cannot be checked: fail closed, like any request.
                    refused = True
                    await send_json(send, 503, {"detail": STORE_DOWN}, {"Retry-After": "5"})
            if not refused:
                await send(message)

        await self.app(scope, receive, send_once_admitted)


class HeadAsGet:
    """HEAD is GET without the body, on every GET route, and documented once here rather
    than as an operation of its own on each of them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)
        # A scope of its own: the server must still see the HEAD it answers.
        as_get = {**scope, "method": "GET"}

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(as_get, receive, send_without_body)
        finally:
            if "route" in as_get:  # for the access log's metrics
                scope["route"] = as_get["route"]


def stack(
    *, max_body_bytes: int, allowed_hosts: frozenset[str], cors_origins: frozenset[str]
) -> Sequence[tuple[type, dict[str, Any]]]:
    """The middleware in order, outermost first, with their options; a part with nothing
    to do (no ALLOWED_HOSTS, no CORS_ORIGINS) is left out."""
    parts: list[tuple[type, dict[str, Any]]] = [
        (RequestIdentity, {}),
        (AccessLog, {}),
        (DefaultHeaders, {}),
        (LastResort, {}),
        (AllowedHosts, {"allowed": allowed_hosts}),
        (BodyBound, {"max_bytes": max_body_bytes}),
        (CorsAnswers, {"origins": cors_origins}),
        (UnroutedBudget, {"exempt": UNBUDGETED}),
        (HeadAsGet, {}),
    ]
    return [(part, options) for part, options in parts if all(options.values()) or not options]


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SANE_REQUEST_ID.match(value):
            return str(value.decode())
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The body's declared length, if any, and whether it comes in chunks."""
    declared, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


def host_allowed(scope: Scope, allowed: frozenset[str]) -> bool:
    """Whether the request's one Host (without its port) is one of `allowed`, or a
    subdomain of an entry written `*.example.com`. More than one Host field is never
    allowed (RFC 9112 §3.2: a 400), whatever they name: proxies and the app could each
    read another one."""
    hosts = [value for name, value in scope["headers"] if name == b"host"]
    if len(hosts) != 1:
        return False
    host = hosts[0]
    name = host.decode("latin-1").lower()
    name = name.rsplit(":", 1)[0] if not name.endswith("]") else name
    if name in allowed:
        return True
    return any(entry.startswith("*.") and name.endswith(entry[1:]) for entry in allowed)


def _with_defaults(message: Message, call: Call) -> Headers:
    headers: Headers = list(message.get("headers", []))
    names = {name.lower() for name, _ in headers}
    headers += [(REQUEST_ID_HEADER, call.request_id.encode()), _NOSNIFF]
    if b"cache-control" not in names:
        headers.append(_NO_STORE)
    if message["status"] == 401 and b"www-authenticate" not in names:
        headers.append(_BEARER_CHALLENGE)
    if call.window is not None:
        headers += call.window.headers()
    return headers


async def admit_unrouted(scope: Scope, receive: Receive) -> None:
    """Admit a request no API route took, as a public one, in the request pool."""
    request = ApiRequest(scope, receive)
    runtime = runtime_of(request)
    admit = functools.partial(
        runtime.admission.admit, request, limits="request", public=True, malformed=False
    )
    await runtime.pools.run("requests", admit)


async def send_json(
    send: Send, status: int, content: Any, extra: dict[str, str] | None = None
) -> None:
    """A whole JSON response (no body for None)."""
    body = b"" if content is None else json.dumps(content).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if content is not None:
        headers.append((b"content-type", b"application/json"))
    headers += [(name.lower().encode(), value.encode()) for name, value in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
