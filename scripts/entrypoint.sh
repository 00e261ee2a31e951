#!/usr/bin/env bash
# Entrypoint of the container; it runs the same way from a checkout (the tests do that).
#
#   entrypoint.sh [serve]
#       Validate the settings, wait (bounded) for PostgreSQL and Redis, migrate, then exec
#       uvicorn in this process, so SIGTERM reaches it (scripts/startup.py says more).
#   entrypoint.sh COMMAND [ARG...]
#       Exec COMMAND as given, e.g. `python -m scripts.sessions list`.
#
# PYTHON [python] is the interpreter with the app's requirements.
# Exit status: that of the command; for serve, 2 on bad configuration, 1 when a dependency
# or the migration fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ] && [ "$1" != "serve" ]; then
  exec "$@"
fi
if [ "$#" -gt 1 ]; then
  echo "entrypoint.sh: serve takes no arguments (settings are environment variables)" >&2
  exit 2
fi
exec "${PYTHON:-python}" -m scripts.startup
