"""Liveness and readiness: public, and exempt from the rate limits."""

import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.logging import get_logger
from service.runtime import Runtime

router = APIRouter(prefix="/health", tags=["health"])
log = get_logger("health")


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    responses={503: {"description": "PostgreSQL or Redis does not answer"}},
)
async def ready(request: Request) -> Any:
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.threads.run(functools.partial(_checks, runtime))
    failing = [name for name, ok in checks.items() if not ok]
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()},
    }
    if failing:
        body["detail"] = f"Unavailable: {', '.join(failing)}"
        return JSONResponse(status_code=503, content=body)
    return body


def _checks(runtime: Runtime) -> dict[str, bool]:
    return {
        "postgresql": _check(runtime.database.ping),
        "redis": _check(runtime.redis.ping),
    }


def _check(ping: Any) -> bool:
    try:
        ping()
    except Exception as error:  # noqa: BLE001 (any failure means "not ready")
        log.warning(
            "dependency_unavailable",
            check=ping.__qualname__,
            error=type(error).__name__,
        )
        return False
    return True
