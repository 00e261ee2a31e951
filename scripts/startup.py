"""The container's start-up (`entrypoint.sh serve`): validate the settings, wait for
PostgreSQL and Redis, migrate, then exec uvicorn (scripts/serve.py) in this process.

Every line goes through the service's own logging (service/logging.py), so the whole
container log has one JSON shape; Alembic's lines too, since it runs in this process.

Environment (defaults in brackets), besides the service's own settings:
  DATABASE_URL, REDIS_URL     required
  WAIT_TIMEOUT_SECONDS [60]   total time to wait for PostgreSQL and Redis together
  HOST [0.0.0.0], PORT [8000]
  WEB_CONCURRENCY             uvicorn workers [CPU count, cgroup quota included, at most 4]
  GRACEFUL_TIMEOUT_SECONDS [20]   for requests in flight after SIGTERM; keep it below the
                              orchestrator's stop grace period
  TRUSTED_PROXIES             comma-separated IPs/CIDRs (or *) allowed to set
                              X-Forwarded-For/-Proto; empty: proxy headers are ignored

Exit status: 2 on bad configuration, 1 when a dependency or the migration fails; once
uvicorn runs, its own.
"""

import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import ValidationError

from service.config import Settings, settings_problems
from service.logging import configure_logging, get_logger

ROOT = Path(__file__).resolve().parents[1]
MAX_DEFAULT_WORKERS = 4
BAD_CONFIGURATION = 2
DEPENDENCY_FAILED = 1


def log() -> Any:
    # Bound at each use: a logger bound before configure_logging would keep structlog's
    # default (non-JSON) setup.
    return get_logger("entrypoint").bind(logger="entrypoint")


class Refused(Exception):
    """A start-up refused, with its exit status and the fields of its log line."""

    def __init__(self, status: int, event: str, message: str, **fields: object) -> None:
        super().__init__(message)
        self.status = status
        self.event = event
        self.fields = fields


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    workers: int
    graceful_seconds: int
    wait_seconds: float
    trusted_proxies: str
    log_level: str
    log_format: str


def configure_early_logging() -> None:
    """Before the settings are validated, so a bad LOG_LEVEL or LOG_FORMAT cannot hide the
    message that says so: INFO and JSON unless both are valid (and then they are the ones
    the service will use)."""
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        level = "INFO"
    log_format = "console" if os.environ.get("LOG_FORMAT") == "console" else "json"
    configure_logging(level=level, log_format=log_format)


def cpu_count() -> int:
    cpus = len(os.sched_getaffinity(0))
    # `docker run --cpus` / compose `cpus:` set a CFS quota that the affinity mask omits.
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota != "max" and int(period) > 0:
        cpus = min(cpus, -(-int(quota) // int(period)))
    return max(cpus, 1)


def whole_number(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < minimum:
        raise Refused(
            BAD_CONFIGURATION,
            "config_invalid",
            f"{name} must be a whole number of at least {minimum}, not {raw!r}",
        )
    return int(raw)


def read_options() -> Options:
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            raise Refused(BAD_CONFIGURATION, "config_invalid", f"{name} is not set")
    try:
        settings = Settings()
    except ValidationError as error:
        raise Refused(BAD_CONFIGURATION, "config_invalid", settings_problems(error)) from None
    default_workers = min(cpu_count(), MAX_DEFAULT_WORKERS)
    raw_wait = os.environ.get("WAIT_TIMEOUT_SECONDS") or "60"
    try:
        wait_seconds = float(raw_wait)
    except ValueError:
        wait_seconds = math.nan
    if not math.isfinite(wait_seconds) or wait_seconds < 0:
        raise Refused(
            BAD_CONFIGURATION,
            "config_invalid",
            f"WAIT_TIMEOUT_SECONDS must be a number of seconds, not {raw_wait!r}",
        )
    return Options(
        host=os.environ.get("HOST") or "0.0.0.0",
        port=whole_number("PORT", 8000, minimum=1),
        workers=whole_number("WEB_CONCURRENCY", default_workers, minimum=1),
        # At least 1: uvicorn reads 0 as no limit at all.
        graceful_seconds=whole_number("GRACEFUL_TIMEOUT_SECONDS", 20, minimum=1),
        wait_seconds=wait_seconds,
        trusted_proxies=os.environ.get("TRUSTED_PROXIES", ""),
        log_level=settings.log_level,
        log_format=settings.log_format,
    )


def describe(error: BaseException) -> str:
    error = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


def check_postgresql(url: str, seconds: float) -> None:
    from sqlalchemy import create_engine, pool, text

    from db.engine import psycopg2_url

    engine = create_engine(
        psycopg2_url(url),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": max(2, round(seconds))},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def check_redis(url: str, seconds: float) -> None:
    from sessions import redis_client

    # One node, a Sentinel service's master or a Cluster, as the service will reach it.
    client = redis_client.connect(url, max_connections=2, socket_timeout=seconds)
    try:
        client.ping()
    finally:
        client.close()


def postgresql_address(url: str) -> str:
    """Where DATABASE_URL points, without its credentials: its host, or the hosts of a
    multi-host URL (`?host=h1:5432&host=h2:5432`)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    hosts = parsed.query.get("host")
    if hosts:
        listed = ",".join([hosts] if isinstance(hosts, str) else hosts)
        return f"{listed}/{parsed.database}"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"


def redis_address(url: str) -> str:
    """Where REDIS_URL points, without its credentials."""
    from sessions import redis_client

    location = redis_client.parse(url)
    if location.topology == "node":
        parsed = urlsplit(url)
        return f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}{parsed.path or '/0'}"
    hosts = ",".join(f"{host}:{port}" for host, port in location.hosts)
    if location.topology == "sentinel":
        return f"sentinels {hosts}, service {location.service_name}, db {location.db}"
    return f"cluster {hosts}"


def wait_for(
    name: str, where: str, check: Callable[[float], None], *, deadline: float, timeout: float
) -> None:
    """One attempt a second (each bounded by the time left) until `deadline`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            check(min(5.0, max(1.0, deadline - time.monotonic())))
        except Exception as error:  # noqa: BLE001 (any failure to connect is retried)
            reason = describe(error)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Refused(
                    DEPENDENCY_FAILED,
                    "dependency_unavailable",
                    f"gave up waiting for {name} at {where} after {attempt} attempts "
                    f"(WAIT_TIMEOUT_SECONDS={timeout:g}): {reason}",
                    dependency=name,
                    attempts=attempt,
                    error=reason,
                ) from None
            log().info(
                "dependency_waiting",
                message=f"waiting for {name} at {where} (attempt {attempt}, {left:.0f}s left): "
                f"{reason}",
                dependency=name,
                attempt=attempt,
                error=reason,
            )
            time.sleep(min(1.0, left))
        else:
            log().info("dependency_ready", message=f"{name} at {where} is ready", dependency=name)
            return


def migrate() -> None:
    """`alembic upgrade head` in this process, so its lines are logged like the rest.
    db/migrations/env.py holds a PostgreSQL advisory lock around the migrations: replicas
    starting together migrate one after another, and the later ones find nothing to do."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep the service's logging
    # One line per loaded plugin at INFO since Alembic 1.16: noise at every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    log().info("migration_started", message="running alembic upgrade head")
    try:
        command.upgrade(config, "head")
    except Exception as error:
        raise Refused(
            DEPENDENCY_FAILED,
            "migration_failed",
            f"alembic upgrade head failed: {describe(error)}",
        ) from error
    log().info("migration_finished", message="database schema is up to date")


def serve_command(options: Options) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "scripts.serve",
        f"--host={options.host}",
        f"--port={options.port}",
        f"--workers={options.workers}",
        f"--graceful-seconds={options.graceful_seconds}",
        f"--log-level={options.log_level}",
        f"--log-format={options.log_format}",
    ]
    if options.trusted_proxies:
        command.append(f"--trusted-proxies={options.trusted_proxies}")
    return command


def empty_metrics_directory() -> None:
    """The workers' metric files start from nothing, whatever an earlier run of this
    container left (service/metrics.py; the image sets PROMETHEUS_MULTIPROC_DIR, so the
    admin CLI run with `docker compose exec` counts into the same directory)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()


def terminate(signum: int, _: object) -> NoReturn:
    # As PID 1 (a container without an init) a signal with no handler would be ignored.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, terminate)
    configure_early_logging()
    try:
        options = read_options()
        deadline = time.monotonic() + options.wait_seconds
        database_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
        wait_for(
            "PostgreSQL",
            postgresql_address(database_url),
            lambda seconds: check_postgresql(database_url, seconds),
            deadline=deadline,
            timeout=options.wait_seconds,
        )
        wait_for(
            "Redis",
            redis_address(redis_url),
            lambda seconds: check_redis(redis_url, seconds),
            deadline=deadline,
            timeout=options.wait_seconds,
        )
        migrate()
    except Refused as refused:
        log().error(
            refused.event, message=str(refused), exit_status=refused.status, **refused.fields
        )
        return refused.status
    log().info(
        "server_starting",
        message=f"starting uvicorn on {options.host}:{options.port} "
        f"with {options.workers} worker(s)",
        workers=options.workers,
    )
    empty_metrics_directory()
    command = serve_command(options)
    os.execv(command[0], command)  # noqa: S606 (this interpreter, fixed arguments)


if __name__ == "__main__":
    sys.exit(main())
