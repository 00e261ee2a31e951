"""Liveness, readiness and metrics: public (metrics has its own token), exempt from the
rate limits, and answered on the event loop, never in the request thread pool."""

import hmac
import os
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service import metrics
from service.config import EXAMPLE_JWT_WARNING
from service.edge.call import runtime_of
from service.errors import NotAuthenticated, NotFound
from service.schemas.health import Liveness, NotReady, Readiness

router = APIRouter(tags=["operations"])


@router.get("/health/live", response_model=Liveness)
async def read_liveness() -> dict[str, str]:
    """Liveness: answers while the process runs, whatever its dependencies do. Restart the
    instance when this fails."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses={503: {"model": NotReady, "description": "PostgreSQL or Redis does not answer"}},
)
async def read_readiness(request: Request) -> Any:
    """Readiness: this worker would serve a request that needs PostgreSQL and Redis
    (their circuit breakers let calls through and they answered within the last second).
    Route no traffic to an instance that answers 503 here. Answered within 2 seconds even
    when a dependency hangs. `worker` names the process that answered."""
    runtime = runtime_of(request)
    checks = await runtime.readiness.status()
    failing = [name for name, ok in checks.items() if not ok]
    body: dict[str, Any] = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()},
        "worker": os.getpid(),
    }
    if runtime.settings.uses_example_secret:
        body["warning"] = EXAMPLE_JWT_WARNING
    if failing:
        problems = runtime.readiness.problems()
        named = [f"{name} ({problems[name]})" if name in problems else name for name in failing]
        body["detail"] = f"Unavailable: {', '.join(named)}"
        return JSONResponse(status_code=503, content=body)
    return body


# For the operator's Prometheus, not for API clients: left out of OpenAPI (the
# operations documentation describes it).
@router.get("/metrics", response_class=Response, include_in_schema=False)
async def read_metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    expected = runtime.settings.metrics_token
    if expected is None:
        raise NotFound()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.get_secret_value().encode()
    ):
        raise NotAuthenticated("A valid METRICS_TOKEN is required")
    body, content_type = await runtime.pools.run_operation(metrics.render)
    return Response(body, media_type=content_type)
