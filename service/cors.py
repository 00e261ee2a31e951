"""CORS for the origins in CORS_ORIGINS, as pure ASGI middleware.

Only a listed origin gets CORS headers, preflight included; any other origin's request
passes through untouched (a preflight from it reaches the app, which answers OPTIONS with
its JSON 405), so the browser refuses it. Tokens travel in `Authorization`, never in
cookies, so credentials are not allowed and no answer says `*`.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = b"Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID"
EXPOSED_HEADERS = (
    b"ETag, Location, Retry-After, X-Request-ID, "
    b"X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
PREFLIGHT_MAX_AGE = b"600"


def _origin_and_preflight(scope: Scope) -> tuple[bytes | None, bool]:
    origin, requested_method = None, False
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value
        elif name == b"access-control-request-method":
            requested_method = True
    return origin, requested_method and scope["method"] == "OPTIONS"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = frozenset(origin.encode() for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins:
            await self.app(scope, receive, send)
            return
        origin, preflight = _origin_and_preflight(scope)
        if origin is None or origin not in self.origins:
            await self.app(scope, receive, send)
            return
        allow = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if preflight:
            headers = [
                *allow,
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                exposed = (b"access-control-expose-headers", EXPOSED_HEADERS)
                message["headers"] = [*message.get("headers", []), *allow, exposed]
            await send(message)

        await self.app(scope, receive, send_with_cors)
