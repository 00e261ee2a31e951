"""The OpenAPI document: FastAPI's, plus what it cannot see from the routes alone, read
from each route's declaration (route.py): the headers every response carries, the
bearer token the protected routes need, and the rate-limit headers of the limited ones."""

from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from service.edge.route import Declaration, EdgeRoute
from service.schemas.common import InternalErrorResponse

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the client's own when it sent a sane one (up to 128 "
        "of A-Z a-z 0-9 . _ : -), else a new one. The logs carry it.",
        "schema": {"type": "string", "maxLength": 128},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the window of the tightest limit that applied",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in that window",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "When that window ends, in epoch seconds",
        "schema": {"type": "integer"},
    },
}
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
BEARER = "HTTPBearer"
SECURITY_SCHEMES = {
    BEARER: {"type": "http", "scheme": "bearer", "description": "An access token from /login"}
}

INTERNAL_ERROR: dict[int | str, dict[str, Any]] = {
    500: {
        "model": InternalErrorResponse,
        "description": "A bug on our side; the request id finds it in the logs",
    }
}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _declarations(app: FastAPI) -> dict[tuple[str, str], Declaration]:
    """Each operation of an EdgeRoute, (path, lower-case method), and its declaration."""
    found: dict[tuple[str, str], Declaration] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, EdgeRoute) and context.path is not None:
            for method in context.methods or ():
                found[(context.path, method.lower())] = route.declaration
    return found


def install(app: FastAPI) -> None:
    """Serve FastAPI's document with the additions; built once, on first request."""

    fastapi_document = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = fastapi_document()
        components = schema.setdefault("components", {})
        components["headers"] = HEADERS
        components["securitySchemes"] = SECURITY_SCHEMES
        declarations = _declarations(app)
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                declaration = declarations.get((path, method))
                if declaration is not None and not declaration.public:
                    operation["security"] = [{BEARER: []}]
                for status, response in operation["responses"].items():
                    headers = response.setdefault("headers", {})
                    headers.setdefault("X-Request-ID", _header("X-Request-ID"))
                    if status in ("429", "503"):
                        headers.setdefault("Retry-After", _header("Retry-After"))
                    # Every EdgeRoute spends the budget: its answers report a window.
                    if declaration is not None and status != "500":
                        for name in RATE_LIMIT_HEADERS:
                            headers.setdefault(name, _header(name))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
