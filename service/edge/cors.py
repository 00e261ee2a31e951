"""CORS for the origins in CORS_ORIGINS, applied by the middleware (CorsAnswers).

Only a listed origin gets CORS headers, preflight included; any other origin's request
goes on untouched (a preflight from it reaches the app, which answers OPTIONS with its
JSON 405), so the browser refuses it. Tokens travel in `Authorization`, never in cookies,
so credentials are not allowed and no answer says `*`. Starlette's CORSMiddleware is not
used: it sends `Access-Control-Expose-Headers` to refused origins and answers their
preflights in plain text.
"""

from starlette.types import Scope

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = b"Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID"
EXPOSED_HEADERS = (
    b"ETag, Location, Retry-After, X-Request-ID, "
    b"X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
PREFLIGHT_MAX_AGE = b"600"
Headers = list[tuple[bytes, bytes]]


class Cors:
    def __init__(self, origins: frozenset[str]) -> None:
        self.origins = frozenset(origin.encode() for origin in origins)

    def answer(self, scope: Scope) -> tuple[Headers | None, bool]:
        """The CORS headers this request's response gets (None: none, the origin is not
        listed) and whether it is a preflight, answered with them alone (204)."""
        if not self.origins:
            return None, False
        origin, requested_method = None, False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                requested_method = True
        if origin is None or origin not in self.origins:
            return None, False
        allow = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if requested_method and scope["method"] == "OPTIONS":
            return [
                *allow,
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            ], True
        return [*allow, (b"access-control-expose-headers", EXPOSED_HEADERS)], False
