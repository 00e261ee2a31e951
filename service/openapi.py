"""The OpenAPI document: FastAPI's, plus what it cannot see from the routes alone: the
headers every response carries, and the rate-limit headers of the limited routes."""

from typing import Any

from fastapi import FastAPI

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
# Set on an operation by the route class of the limited routes (service.routing); replaced
# by the rate-limit headers of its responses.
RATE_LIMITED = "x-rate-limited"
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

INTERNAL_ERROR: dict[int | str, dict[str, Any]] = {
    500: {
        "model": InternalErrorResponse,
        "description": "A bug on our side; the request id finds it in the logs",
    }
}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def install(app: FastAPI) -> None:
    """Serve FastAPI's document with the headers added; built once, on first request."""

    fastapi_document = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = fastapi_document()
        schema.setdefault("components", {})["headers"] = HEADERS
        for operations in schema["paths"].values():
            for operation in operations.values():
                limited = operation.pop(RATE_LIMITED, False)
                for status, response in operation["responses"].items():
                    headers = response.setdefault("headers", {})
                    headers.setdefault("X-Request-ID", _header("X-Request-ID"))
                    if status in ("429", "503"):
                        headers.setdefault("Retry-After", _header("Retry-After"))
                    if limited and status != "500":
                        for name in RATE_LIMIT_HEADERS:
                            headers.setdefault(name, _header(name))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
