"""Prometheus metrics, summed over every worker process of one server (prometheus-client's
multiprocess mode: each process writes its values to files in one directory, and a scrape
adds them up).

The directory is PROMETHEUS_MULTIPROC_DIR when set (the container's entrypoint prepares
and empties it at start). Otherwise it is derived here: one directory per server, named
after the process that started the workers, so `uvicorn --workers N` needs no setup and two
servers never mix their numbers; directories left by servers that are gone are removed.
The variable must be in place before prometheus_client is imported, hence the order below.
"""

import contextlib
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Marks a directory derived here, so that a process started by one that imported this
# module (a test runner, say) derives its own rather than inheriting its parent's.
_DERIVED_FOR = "TASKS_SERVICE_METRICS_DIR_FOR"


def _prepare_directory() -> None:
    parent = multiprocessing.parent_process()
    server_pid = parent.pid if parent is not None and parent.pid else os.getpid()
    inherited = os.environ.get(_DERIVED_FOR) not in (None, str(server_pid))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not inherited:
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        return
    root = Path(tempfile.gettempdir()) / f"tasks-service-metrics-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    for old in root.iterdir():
        if old.name.isdigit() and int(old.name) != server_pid and not _process_alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    directory = root / str(server_pid)
    directory.mkdir(exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    os.environ[_DERIVED_FOR] = str(server_pid)


_prepare_directory()

from prometheus_client import (  # noqa: E402 (needs the directory set above)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "http_requests",
    "Requests answered, by route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to its response's last byte",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SESSION_REVOCATIONS = Counter("session_revocations", "Sessions ended, by reason", ["reason"])
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections", "Requests refused with 429, by the limit's scope", ["limit"]
)
LOGIN_ATTEMPTS = Counter("login_attempts", "POST /login, by outcome", ["outcome"])
MFA_ATTEMPTS = Counter(
    "mfa_attempts",
    "Second-factor codes checked (login, enrolment, account routes), by method and outcome",
    ["method", "outcome"],
)
OIDC_LOGINS = Counter(
    "oidc_logins",
    "OpenID Connect callbacks, by provider and outcome (signed_in, created, linked, or the "
    "error the browser was sent back with)",
    ["provider", "outcome"],
)
DEPENDENCY_ERRORS = Counter(
    "dependency_errors", "Failed calls to Redis or PostgreSQL", ["dependency"]
)
CIRCUIT_STATE = Gauge(
    "dependency_circuit_state",
    "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open (the worst of the workers)",
    ["dependency"],
    multiprocess_mode="livemax",
)
UNMATCHED_ROUTE = "unmatched"


def render() -> tuple[bytes, str]:
    """The sum over every worker of this server, in the Prometheus text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def request_series(method: str, route: str | None, status: int) -> tuple[Any, Any]:
    """The request counter and duration histogram of one method, route template (or
    "unmatched") and status."""
    route = route or UNMATCHED_ROUTE
    return (
        HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
        HTTP_DURATION.labels(method=method, route=route),
    )


def process_exiting() -> None:
    """This worker's gauges stop counting (its counters stay in the sums)."""
    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
