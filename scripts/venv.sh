#!/usr/bin/env bash
# Creates .venv if missing and installs requirements-dev.lock (every package pinned, with
# hashes: see scripts/lock.sh) whenever the lock changed since the last install. Used by
# scripts/test.sh, scripts/lock.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
wanted=$(sha256sum requirements-dev.lock | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "==> installing requirements-dev.lock"
  .venv/bin/python -m pip install --quiet --upgrade pip
  # --no-deps: the lock lists every package, so nothing outside it (and its hashes) comes in.
  .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
  .venv/bin/python -m pip check
  echo "$wanted" >"$stamp"
fi
