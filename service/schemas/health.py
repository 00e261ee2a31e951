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
        {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}},
    )
    status: CheckStatus
    checks: dict[str, CheckStatus] = Field(description="Each dependency: postgresql, redis")


class NotReady(Readiness):
    """At least one dependency did not answer within 2 seconds."""

    model_config = examples(
        {
            "status": "unavailable",
            "checks": {"postgresql": "unavailable", "redis": "ok"},
            "detail": "Unavailable: postgresql",
        }
    )
    status: Literal["unavailable"]
    detail: str
