#!/usr/bin/env bash
# The whole test command: creates .venv if missing, installs the requirements, then runs
# ruff (lint + format check), mypy and pytest against the real PostgreSQL and Redis.
# TEST_DATABASE_URL is an *admin* connection: the suite creates and drops its own database.
# The stack tests (tests/stack) build and run docker-compose.yml whenever a Docker engine
# with the compose plugin answers, and are skipped otherwise; STACK_TESTS=required (set by
# .ci/run) makes a missing engine a failure instead, STACK_TESTS=skip leaves them out.
# The suite creates (and drops) throwaway databases through TEST_DATABASE_URL and flushes
# the Redis db of TEST_REDIS_URL (index 15 by default) at its start.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${STACK_TESTS:-}" in
  "" | required | skip) ;;
  *)
    echo "STACK_TESTS is required, skip, or unset; not '${STACK_TESTS}'" >&2
    exit 2
    ;;
esac

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/postgres}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
./scripts/venv.sh

# The OpenID Provider the tests sign in with (tests/oidc/provider, the npm package
# oidc-provider): npm ci installs its lock whenever the lock changed since the last install
# (its hash is kept in node_modules, which npm ci empties first).
provider=tests/oidc/provider
if ! command -v node >/dev/null || ! command -v npm >/dev/null \
  || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "Node.js 20 or newer, with npm, is needed for the OpenID Provider of tests/oidc;" >&2
  echo "found: node $(node --version 2>/dev/null || echo none), npm $(npm --version 2>/dev/null || echo none)." >&2
  exit 1
fi
stamp=$provider/node_modules/.package-lock.sha
wanted=$(sha256sum "$provider/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "==> installing $provider/package-lock.json (npm ci)"
  (cd "$provider" && npm ci --loglevel=error)
  echo "$wanted" >"$stamp"
fi

services_answer() {
  .venv/bin/python - <<'PY'
import os, sys
import redis, sqlalchemy
from db.engine import psycopg2_url
try:
    engine = sqlalchemy.create_engine(psycopg2_url(os.environ["TEST_DATABASE_URL"]),
                                      connect_args={"connect_timeout": 3})
    with engine.connect():
        pass
    redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_connect_timeout=3).ping()
except Exception as error:
    print(f"    not reachable: {type(error).__name__}: {error}".splitlines()[0])
    sys.exit(1)
PY
}

if ! services_answer; then
  if docker info >/dev/null 2>&1; then
    echo "==> starting PostgreSQL and Redis with docker compose"
    docker compose -f docker-compose.yml -f docker-compose.test.yml up -d --wait db redis
  else
    echo "PostgreSQL or Redis is not reachable at TEST_DATABASE_URL / TEST_REDIS_URL," >&2
    echo "and no Docker engine runs to start them." >&2
    exit 1
  fi
fi

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy .
if [ "${STACK_TESTS:-}" = skip ]; then
  echo "==> STACK_TESTS=skip: the stack tests (tests/stack) are left out"
elif docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  echo "==> a Docker engine answers: the stack tests run (tests/stack)"
elif [ "${STACK_TESTS:-}" = required ]; then
  echo "==> STACK_TESTS=required but no Docker engine with the compose plugin answers" >&2
else
  echo "==> no Docker engine with the compose plugin answers: the stack tests are skipped"
fi
echo "==> pytest"
.venv/bin/pytest "$@"
