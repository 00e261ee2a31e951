#!/usr/bin/env bash
# Entrypoint of the container; it runs the same way from a checkout (the tests do that).
#
#   entrypoint.sh [serve [UVICORN_OPTION...]]
#       Wait (bounded) for PostgreSQL and Redis, run `alembic upgrade head`, then exec
#       uvicorn in this process, so SIGTERM reaches it and it shuts down gracefully.
#   entrypoint.sh COMMAND [ARG...]
#       Exec COMMAND as given, e.g. `python -m scripts.sessions list`.
#
# Environment (defaults in brackets):
#   DATABASE_URL, REDIS_URL     required for serve
#   WAIT_TIMEOUT_SECONDS [60]   total time to wait for PostgreSQL and Redis together
#   HOST [0.0.0.0], PORT [8000]
#   WEB_CONCURRENCY             uvicorn workers [CPU count, cgroup quota included, at most 4]
#   GRACEFUL_TIMEOUT_SECONDS [20]   for requests in flight after SIGTERM; keep it below
#                               the orchestrator's stop grace period
#   TRUSTED_PROXIES             comma-separated IPs/CIDRs (or *) allowed to set
#                               X-Forwarded-For/-Proto; empty: proxy headers are ignored
#   LOG_FORMAT [json]           json or console, for the entrypoint's own lines too
#   PYTHON [python]             interpreter with the app's requirements
#
# Exit status: that of the command; 1 when a dependency or the migration fails; 2 on bad
# configuration.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ] && [ "$1" != "serve" ]; then
  exec "$@"
fi
if [ "$#" -gt 0 ]; then
  shift # "serve"; whatever follows goes to uvicorn
fi

PYTHON="${PYTHON:-python}"

log() { # LEVEL EVENT MESSAGE: one line, JSON like the app's unless LOG_FORMAT=console
  local level=$1 event=$2 message=$3 now
  now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  if [ "${LOG_FORMAT:-json}" = "console" ]; then
    printf '%s [%-5s] entrypoint: %s\n' "$now" "$level" "$message"
  else
    message=${message//\\/\\\\}
    message=${message//\"/\\\"}
    printf '{"event": "%s", "message": "%s", "level": "%s", "logger": "entrypoint", "timestamp": "%s"}\n' \
      "$event" "$message" "$level" "$now"
  fi
}

fail() { # STATUS EVENT MESSAGE
  log error "$2" "$3"
  exit "$1"
}

cpu_count() {
  local cpus quota period limit
  cpus=$(nproc 2>/dev/null || echo 1)
  # `docker run --cpus` / compose `cpus:` set a CFS quota that nproc does not see.
  if [ -r /sys/fs/cgroup/cpu.max ] && read -r quota period </sys/fs/cgroup/cpu.max; then
    if [ "$quota" != "max" ] && [ "${period:-0}" -gt 0 ]; then
      limit=$(((quota + period - 1) / period))
      if [ "$limit" -lt "$cpus" ]; then
        cpus=$limit
      fi
    fi
  fi
  echo "$cpus"
}

[ -n "${DATABASE_URL:-}" ] || fail 2 config_invalid "DATABASE_URL is not set"
[ -n "${REDIS_URL:-}" ] || fail 2 config_invalid "REDIS_URL is not set"

workers="${WEB_CONCURRENCY:-}"
if [ -z "$workers" ]; then
  workers=$(cpu_count)
  if [ "$workers" -gt 4 ]; then
    workers=4
  fi
fi
case "$workers" in
  '' | *[!0-9]* | 0) fail 2 config_invalid "WEB_CONCURRENCY must be a positive integer, not '$workers'" ;;
esac
graceful="${GRACEFUL_TIMEOUT_SECONDS:-20}"
case "$graceful" in
  '' | *[!0-9]*) fail 2 config_invalid "GRACEFUL_TIMEOUT_SECONDS must be a whole number of seconds" ;;
esac

# Settings are validated before anything else (a production start with the example
# JWT_SECRET stops here, with a message that never echoes the value); then PostgreSQL and
# Redis are polled, one message per failed attempt, until WAIT_TIMEOUT_SECONDS have passed.
"$PYTHON" - <<'PY'
import json
import os
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit


def log(level: str, event: str, message: str, **fields: object) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if os.environ.get("LOG_FORMAT", "json") == "console":
        print(f"{now} [{level:<5}] entrypoint: {message}", flush=True)
    else:
        line = {"event": event, "message": message, "level": level, "logger": "entrypoint"}
        print(json.dumps({**line, **fields, "timestamp": now}), flush=True)


try:
    import redis
    from pydantic import ValidationError
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from sqlalchemy import create_engine, pool, text
    from sqlalchemy.engine import make_url

    from db.engine import psycopg2_url
    from service.config import Settings
except ImportError as error:
    log("error", "config_invalid", f"{sys.executable} lacks the app's requirements: {error}")
    sys.exit(2)

try:
    Settings()
except ValidationError as error:
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]).upper() or "settings"
        log("error", "config_invalid", f"{where}: {problem['msg']}")
    sys.exit(2)

try:
    timeout = float(os.environ.get("WAIT_TIMEOUT_SECONDS") or 60)
except ValueError:
    log("error", "config_invalid", "WAIT_TIMEOUT_SECONDS must be a number of seconds")
    sys.exit(2)
deadline = time.monotonic() + timeout
database_url = make_url(psycopg2_url(os.environ["DATABASE_URL"]))
redis_url = os.environ["REDIS_URL"]


def check_postgresql(seconds: float) -> None:
    engine = create_engine(
        database_url,
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": max(2, round(seconds))},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def check_redis(seconds: float) -> None:
    # redis-py retries 10 times by default: one attempt here, the loop does the retrying.
    client = redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=seconds,
        socket_timeout=seconds,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    finally:
        client.close()


def describe(error: BaseException) -> str:
    error = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


def wait_for(name: str, where: str, check) -> None:
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            check(min(5.0, max(1.0, left)))
        except Exception as error:
            reason = describe(error)
            left = deadline - time.monotonic()
            if left <= 0:
                log(
                    "error",
                    "dependency_unavailable",
                    f"gave up waiting for {name} at {where} after {attempt} attempts "
                    f"(WAIT_TIMEOUT_SECONDS={timeout:g}): {reason}",
                    dependency=name,
                    attempts=attempt,
                    error=reason,
                )
                sys.exit(1)
            log(
                "info",
                "dependency_waiting",
                f"waiting for {name} at {where} (attempt {attempt}, {left:.0f}s left): {reason}",
                dependency=name,
                attempt=attempt,
                error=reason,
            )
            time.sleep(min(1.0, left))
        else:
            log("info", "dependency_ready", f"{name} at {where} is ready", dependency=name)
            return


redis_where = urlsplit(redis_url)
wait_for(
    "PostgreSQL",
    f"{database_url.host or 'localhost'}:{database_url.port or 5432}/{database_url.database}",
    check_postgresql,
)
wait_for(
    "Redis",
    f"{redis_where.hostname or 'localhost'}:{redis_where.port or 6379}{redis_where.path or '/0'}",
    check_redis,
)
PY

# env.py holds a PostgreSQL advisory lock around the migrations: replicas starting together
# migrate one after another, and the later ones find nothing left to do.
log info migration_started "running alembic upgrade head"
"$PYTHON" -m alembic upgrade head || fail 1 migration_failed "alembic upgrade head failed"
log info migration_finished "database schema is up to date"

if [ -n "${TRUSTED_PROXIES:-}" ]; then
  proxy_args=(--proxy-headers --forwarded-allow-ips "$TRUSTED_PROXIES")
else
  # uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1, letting a local client
  # choose its own rate-limit key.
  proxy_args=(--no-proxy-headers)
fi

log info server_starting "starting uvicorn on ${HOST:-0.0.0.0}:${PORT:-8000} with $workers worker(s)"
exec "$PYTHON" -m uvicorn service.main:app \
  --host "${HOST:-0.0.0.0}" \
  --port "${PORT:-8000}" \
  --workers "$workers" \
  --timeout-graceful-shutdown "$graceful" \
  --no-access-log \
  "${proxy_args[@]}" \
  "$@"
