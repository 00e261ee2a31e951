#!/usr/bin/env bash
# Writes requirements.txt (runtime) and requirements-dev.lock (runtime + dev) from the
# dependencies declared in pyproject.toml: every package pinned, with the hashes of all its
# files. Resolved for CPython 3.11 on Linux x86_64 (this machine, CI and the image): one set
# of versions for every interpreter from 3.11 on, so the tests run what the image runs.
# Versions already in the locks are kept unless asked otherwise; arguments go to both
# `uv pip compile` runs:
#   ./scripts/lock.sh                          # after a change to pyproject.toml
#   ./scripts/lock.sh --upgrade                # every package to its newest version
#   ./scripts/lock.sh --upgrade-package fastapi
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/venv.sh
compile() {
  .venv/bin/uv pip compile pyproject.toml --quiet --generate-hashes \
    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    --custom-compile-command ./scripts/lock.sh "$@"
}
compile --output-file requirements.txt "$@"
# The dev lock is held to the runtime lock's versions: the tests run what the image runs.
compile --extra dev --constraint requirements.txt --output-file requirements-dev.lock "$@"
