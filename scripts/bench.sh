#!/usr/bin/env bash
# Benchmark a running server with wrk: bounded (fixed duration and connections), loopback.
#
#   BASE_URL=http://127.0.0.1:8000 ./scripts/bench.sh
#
# Run it with the server's own environment (DATABASE_URL, REDIS_URL, THREAD_POOL_SIZE...):
# the floor app uses the same settings. The server must run with budgets the benchmark
# cannot exhaust, for example:
#   RATE_LIMIT=10000000/minute LOGIN_RATE_LIMIT=10000000/minute \
#   LOGIN_ACCOUNT_RATE_LIMIT=10000000/hour REGISTER_RATE_LIMIT=10000000/hour MAX_SESSIONS_PER_USER=1000 \
#   .venv/bin/uvicorn service.main:app --workers 2 --no-proxy-headers
#
# It prepares its own users, sessions and tasks through the API, starts the io floor
# (scripts/bench/floor.py: one Redis GET and one SELECT 1 in a bare FastAPI `def` endpoint,
# nothing of the project imported) with as many workers, then runs ROUNDS rounds (3), each
# the io floor then every scenario, and prints each scenario's share of its round's floor
# and the median. Settings: DURATION (8s), CONNECTIONS (64), THREADS (2), WORKERS (2, for
# the floor), FLOOR_THREADS (2), LOGOUT_SESSIONS (3000) and LOGOUT_DURATION (1s: each
# logout spends one prepared session; a run that uses them all is marked), SCENARIOS (a
# comma-separated subset, e.g. "get,list"). Exit status 1 if any request failed.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
WORKERS="${WORKERS:-2}"
FLOOR_PORT="${FLOOR_PORT:-8099}"
PY=.venv/bin/python
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
[ -x "$PY" ] || { echo "run ./scripts/test.sh once first to create .venv" >&2; exit 2; }

case "$BASE_URL" in
  http://127.*|http://localhost*|http://\[::1\]*) ;;
  *) echo "BASE_URL must be a loopback address" >&2; exit 2 ;;
esac

data=$(mktemp -d)
floor_pid=""
cleanup() {
  [ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null && wait "$floor_pid" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT

.venv/bin/uvicorn scripts.bench.floor:app --host 127.0.0.1 --port "$FLOOR_PORT" \
  --workers "$WORKERS" --no-access-log --log-level warning &
floor_pid=$!

echo "preparing users, sessions and tasks through $BASE_URL ..." >&2
"$PY" -m scripts.bench.prepare --base-url "$BASE_URL" --out "$data" \
  --logout-sessions "${LOGOUT_SESSIONS:-3000}"

for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$FLOOR_PORT/io" >/dev/null && break
  sleep 0.2
done

echo "running wrk: ${ROUNDS:-3} rounds, ${DURATION:-8s} per run, ${CONNECTIONS:-64} connections" >&2
"$PY" -m scripts.bench.run "$BASE_URL" "http://127.0.0.1:$FLOOR_PORT" "$data"
