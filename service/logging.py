"""structlog setup: one JSON object per line (or console output for humans).

Our own events go straight through structlog (no stdlib round trip on the hot path);
stdlib loggers (uvicorn, SQLAlchemy, alembic) are routed through the same processors.
"""

import logging
import sys
from typing import Any, TextIO

import structlog
from pydantic_core import to_json

# Never let these reach a log line, whoever passes them.
SECRET_KEYS = frozenset(
    {
        "password",
        "token",
        "access_token",
        "refresh_token",
        "device_token",
        "authorization",
        "jwt_secret",
    }
)


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in SECRET_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


def _json(event: dict[str, Any], **_: Any) -> str:
    # pydantic-core's serializer: a third of the line's cost with the standard library's
    # json (docs/performance.md); anything it does not know is written as its repr.
    return to_json(event, fallback=repr).decode()


def configure_logging(
    *, level: str = "INFO", log_format: str = "json", stream: TextIO | None = None
) -> None:
    stream = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json)

    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # SlowAPI logs each limit it sees exceeded with its key (an email, for the login
    # limits); the service logs its own "rate_limited" event instead.
    logging.getLogger("slowapi").setLevel(logging.ERROR)
    # The access line is written by our middleware, with the request id and user.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.disabled = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
