from typing import Literal

from pydantic import ConfigDict, Field

from service.schemas.common import ResponseBody, examples

CheckStatus = Literal["ok", "unavailable"]


class Liveness(ResponseBody):
    """The process is up and answering."""

    model_config = examples({"status": "ok"})
    status: Literal["ok"]


class Readiness(ResponseBody):
    """Whether this instance can reach its dependencies right now."""

    # `warning` is sent only when there is one: not required.
    model_config = ConfigDict(
        **examples({"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}, "worker": 4127}),
        json_schema_serialization_defaults_required=False,
    )
    status: CheckStatus
    checks: dict[str, CheckStatus] = Field(description="Each dependency: postgresql, redis")
    worker: int = Field(description="The id of the worker process that answered")
    warning: str | None = Field(
        default=None,
        description="A configuration that must not reach production (the example "
        "JWT_SECRET), in words; absent when there is none. The status stays as it is.",
    )


class NotReady(Readiness):
    """At least one dependency is refused by this worker's circuit breaker, or did not
    answer within 2 seconds, or (PostgreSQL) answered with a schema that is not at the
    migration head, which `detail` says."""

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
