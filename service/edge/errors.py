"""Errors: every exception rendered as JSON here, once, and nothing else done: domain
errors (401, 403, 404, 409, 412, 429...), routing errors, validation errors (with the
submitted input stripped), an unavailable Redis or PostgreSQL (503). A malformed request
was admitted before its refusal got here (service.edge.route)."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from service.edge.circuits import CircuitOpen
from service.edge.route import EdgeRoute, UnsupportedMediaType, unknown_parameter
from service.errors import DomainError, PasswordRefused
from service.logging import get_logger
from sessions.store import NotReplicated

log = get_logger("service")
UNAVAILABLE_HEADERS = {"Retry-After": "5"}
PATTERN_MISMATCH = "The value does not have the form this field takes (see its description)"


def _json(status: int, content: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=content, headers=headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return _json(exc.status_code, {"detail": exc.detail, **exc.fields}, exc.headers or None)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # A body FastAPI could not parse (not UTF-8 JSON) is malformed input like any
        # other: 422.
        error = {"type": "json_invalid", "loc": ["body"], "msg": "Body is not valid UTF-8 JSON"}
        return _json(422, {"detail": [error]})
    if exc.status_code == 405:
        # Starlette names only the methods of the first route that matched the path.
        return _json(405, {"detail": exc.detail}, _allowed_methods(request, exc.headers))
    return _json(exc.status_code, {"detail": exc.detail}, exc.headers)


def _allowed_methods(request: Request, fallback: Mapping[str, str] | None) -> dict[str, str]:
    for path, operations in request.app.openapi()["paths"].items():
        if compile_path(path)[0].match(request.url.path):
            return {"Allow": ", ".join(sorted(method.upper() for method in operations))}
    return dict(fallback or {})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    route = request.scope.get("route")
    errors = [_in_words(error, route) for error in exc.errors()]
    return _json(422, {"detail": jsonable_encoder(errors)})


def _in_words(error: dict[str, Any], route: Any) -> dict[str, Any]:
    """The error as a client should read it. FastAPI's default echoes the submitted value
    (a password, say) in `input`: never sent. Nor is a regular expression: the schemas
    say their patterns in words (service.schemas.common.Documented); any pattern left is
    named as a shape, never shown."""
    shown = {key: value for key, value in error.items() if key not in ("input", "url")}
    location = tuple(shown.get("loc", ()))
    if shown.get("type") == "extra_forbidden" and location[:1] == ("query",):
        known = route.query_names if isinstance(route, EdgeRoute) else frozenset()
        shown["msg"] = unknown_parameter(str(location[-1]), known)
    context = shown.get("ctx")
    if isinstance(context, dict) and "pattern" in context:
        shown["msg"] = PATTERN_MISMATCH
        context = {key: value for key, value in context.items() if key != "pattern"}
        shown["ctx"] = context
        if not context:
            del shown["ctx"]
    return shown


async def _unsupported_media_type(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnsupportedMediaType)
    # RFC 5789: a 415 to a PATCH names the patch documents the resource takes.
    accepted = ", ".join(exc.accepted)
    headers = {"Accept-Patch": accepted} if request.method == "PATCH" else None
    return _json(415, {"detail": exc.detail}, headers)


async def _password_refused(_: Request, exc: Exception) -> JSONResponse:
    # Found by the service once the account is known; the same shape as a schema's 422.
    assert isinstance(exc, PasswordRefused)
    return _json(exc.status_code, {"detail": exc.errors()})


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.error("redis_unavailable", error=type(exc).__name__)
    return _json(503, {"detail": "Session store unavailable"}, UNAVAILABLE_HEADERS)


async def _not_replicated(_: Request, exc: Exception) -> JSONResponse:
    # The revocation holds on the Redis master, but too few replicas have it to be sure
    # it survives a failover: not claimed. Repeating it is safe.
    log.error("revocation_not_replicated", error=str(exc))
    detail = "Session store could not confirm the change on its replicas; retry"
    return _json(503, {"detail": detail}, {"Retry-After": "1"})


async def _circuit_open(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CircuitOpen)
    if exc.dependency == "redis":
        return await _redis_down(request, exc)
    return _json(503, {"detail": "Database unavailable"}, UNAVAILABLE_HEADERS)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    connection_lost = isinstance(exc, OperationalError | PoolTimeoutError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
    if not connection_lost:
        raise exc
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
    log.error(
        "database_unavailable", error=type(exc).__name__, reason=reason[0][:200] if reason else ""
    )
    return _json(503, {"detail": "Database unavailable"}, UNAVAILABLE_HEADERS)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PasswordRefused, _password_refused)
    app.add_exception_handler(UnsupportedMediaType, _unsupported_media_type)
    app.add_exception_handler(RedisError, _redis_down)
    app.add_exception_handler(CircuitOpen, _circuit_open)
    app.add_exception_handler(NotReplicated, _not_replicated)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(PoolTimeoutError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
