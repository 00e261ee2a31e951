"""structlog setup: one JSON object per line (or console output for humans).

Our own events go straight through structlog (no stdlib round trip on the hot path);
stdlib loggers (uvicorn, SQLAlchemy, alembic) are routed through the same processors.
"""

import logging
import re
import sys
import traceback
from typing import Any, TextIO

import structlog
from pydantic_core import to_json
from sqlalchemy.exc import StatementError

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
    line = to_json(event, fallback=repr).decode()
    # It escapes the C0 controls, as JSON must, but writes C1 ones (U+0080-U+009F, a
    # percent-decoded path may hold them) as they are, and a terminal showing the log may
    # act on them (U+009B is CSI). Escaped, they are the same JSON text. Only lines with
    # anything but ASCII pay for the look.
    if not line.isascii():
        line = _C1_CONTROLS.sub(_json_escaped, line)
    return line


_C1_CONTROLS = re.compile("[\x80-\x9f]")


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def _database_errors_without_values(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """A traceback through a database error, with the error's words left out: PostgreSQL's
    message and DETAIL quote the values (`Failing row contains (...)`, `Key (email)=(...)`),
    and SQLAlchemy's adds the statement's parameters (hidden by the engine too). The
    traceback keeps its frames, the statement (with placeholders only), the SQLSTATE and
    the names of the table, column and constraint concerned."""
    info = _exc_info(event.get("exc_info"))
    if info is None or not any(_is_database_error(error) for error in _chain(info[1])):
        return event
    del event["exc_info"]
    event["exception"] = "".join(_traceback_lines(info[1]))
    return event


def _exc_info(value: Any) -> tuple[Any, BaseException, Any] | None:
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return (value[0], value[1], value[2])
    if value is True:
        current = sys.exc_info()
        return (current[0], current[1], current[2]) if current[1] is not None else None
    return None


def _chain(error: BaseException | None) -> list[BaseException]:
    """The exception and those it was raised from or during, oldest first."""
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return chain[::-1]


def _is_database_error(error: BaseException) -> bool:
    # psycopg2's own errors carry a `pgcode` (and are wrapped by SQLAlchemy's).
    return isinstance(error, StatementError) or hasattr(error, "pgcode")


def _traceback_lines(error: BaseException) -> list[str]:
    lines: list[str] = []
    chain = _chain(error)
    for position, link in enumerate(chain):
        if position:
            lines.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if link.__cause__ is chain[position - 1]
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(link.__traceback__)
        if _is_database_error(link):
            lines.append(_database_error_words(link))
        else:
            lines += traceback.format_exception_only(type(link), link)
    return lines


def _database_error_words(error: BaseException) -> str:
    name = f"{type(error).__module__}.{type(error).__qualname__}"
    driver_error = getattr(error, "orig", error)
    diagnostics = getattr(driver_error, "diag", None)
    facts = [f"SQLSTATE {getattr(driver_error, 'pgcode', None) or 'unknown'}"]
    for fact in ("table_name", "column_name", "constraint_name"):
        if value := getattr(diagnostics, fact, None):
            facts.append(f"{fact.removesuffix('_name')} {value}")
    statement = getattr(error, "statement", None)
    if statement:
        facts.append(f"statement: {' '.join(str(statement).split())}")
    return f"{name}: [message withheld: it may quote values] {'; '.join(facts)}\n"


# C0 and C1 control characters and DEL: a terminal acts on them (colours, cursor moves, a
# forged line). Request values reach log lines percent-decoded, so they may hold any.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match[0]):02x}"


def _escape_controls(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """For the console: every control character in a value written as `\\xNN` (JSON
    escapes them itself; the console renderer prints text as it is). Other values are
    printed as their repr, which escapes them already. A traceback keeps its lines."""
    for key, value in event.items():
        if isinstance(value, str):
            pattern = _CONTROLS_BUT_LINES if key in ("exception", "stack") else _CONTROLS
            event[key] = pattern.sub(_escaped, value)
    return event


def configure_logging(
    *, level: str = "INFO", log_format: str = "json", stream: TextIO | None = None
) -> None:
    stream = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
        _database_errors_without_values,
    ]
    # How a line is written, after the traceback (if any) became text.
    rendering: list[Any]
    if log_format == "console":
        # Colours only for a terminal: in a file they are escape sequences of their own.
        rendering = [_escape_controls, structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    else:
        rendering = [structlog.processors.JSONRenderer(serializer=_json)]

    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )

    # Console: a stdlib traceback as text too, so that it is escaped like the rest.
    stdlib_exceptions = [structlog.processors.format_exc_info] if log_format == "console" else []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *stdlib_exceptions,
            *rendering,
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
