from typing import Literal

from pydantic import Field

from service.schemas.common import ResponseBody, examples

CheckStatus = Literal["ok", "unavailable"]


class Liveness(ResponseBody):
    """The process is up and answering."""

    model_config = examples({"status": "ok"})
    status: Literal["ok"]


class Readiness(ResponseBody):
    """Whether this instance can reach its dependencies right now."""

    model_config = examples(
        {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}, "worker": 4127},
    )
    status: CheckStatus
    checks: dict[str, CheckStatus] = Field(description="Each dependency: postgresql, redis")
    worker: int = Field(description="The id of the worker process that answered")


class NotReady(Readiness):
    """At least one dependency is refused by this worker's circuit breaker, or did not
    answer within 2 seconds."""

    model_config = examples(
        {
            "status": "unavailable",
            "checks": {"postgresql": "unavailable", "redis": "ok"},
            "worker": 4127,
            "detail": "Unavailable: postgresql",
        }
    )
    status: Literal["unavailable"]
    detail: str
