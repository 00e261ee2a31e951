"""Every error becomes JSON here, once: domain errors, routing errors, validation
errors (with the submitted input stripped) and an unavailable Redis or PostgreSQL."""

import functools
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from slowapi.errors import RateLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from service import metrics
from service.circuits import CircuitOpen
from service.errors import DomainError
from service.logging import get_logger
from service.ratelimit import LimitState
from service.runtime import Runtime

log = get_logger("service")
UNAVAILABLE_HEADERS = {"Retry-After": "5"}


def _json(status: int, content: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=content, headers=headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return _json(exc.status_code, {"detail": exc.detail}, exc.headers or None)


async def _budget_refusal(request: Request) -> JSONResponse | None:
    """A request refused as malformed still spends its client's budget: the answer, if
    that refuses it instead (429, or 503 with Redis down)."""
    runtime: Runtime = request.app.state.runtime
    try:
        await runtime.threads.run(functools.partial(runtime.limits.spend_budget, request=request))
    except RateLimitExceeded as error:
        return await _rate_limited(request, error)
    except RedisError as error:
        return await _redis_down(request, error)
    return None


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    state: LimitState | None = getattr(request.state, "rate_limit", None)
    headers = {"Retry-After": state.retry_after()} if state else None
    scope = exc.limit.scope if exc.limit is not None else "unknown"
    log.warning("rate_limited", limit=str(exc.limit.limit) if exc.limit else None, scope=scope)
    metrics.RATE_LIMIT_REJECTIONS.labels(limit=scope).inc()
    if request.url.path == "/login":
        metrics.LOGIN_ATTEMPTS.labels(outcome="limited").inc()
    return _json(429, {"detail": f"Rate limit exceeded: {exc.detail}"}, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # A body that is not UTF-8 JSON is malformed input like any other: 422.
        if refusal := await _budget_refusal(request):
            return refusal
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
    if refusal := await _budget_refusal(request):
        return refusal
    # FastAPI's default echoes the submitted value (a password, say) in `input`.
    errors = [
        {key: value for key, value in error.items() if key not in ("input", "url")}
        for error in exc.errors()
    ]
    return _json(422, {"detail": jsonable_encoder(errors)})


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.error("redis_unavailable", error=type(exc).__name__)
    return _json(503, {"detail": "Session store unavailable"}, UNAVAILABLE_HEADERS)


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


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisError, _redis_down)
    app.add_exception_handler(CircuitOpen, _circuit_open)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(PoolTimeoutError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
