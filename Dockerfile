# Image of the tasks service. It needs BuildKit (the bind and secret mounts below), which
# `docker compose build` always uses; the plain `docker build` of a Docker 23+ CLI uses it
# only through the buildx plugin (without it: "the --mount option requires BuildKit"):
#
#   docker compose build                                         # as `up --build` does
#   docker buildx build -t tasks-service .                       # with the buildx plugin
#   DOCKER_BUILDKIT=1 docker build -t tasks-service .            # a Docker 20.10 CLI
#   docker run --env-file .env -p 127.0.0.1:8000:8000 tasks-service        # serve
#   docker run --env-file .env tasks-service python -m scripts.sessions list
#
# No "# syntax=" line: it would make BuildKit fetch a frontend image from Docker Hub first,
# which fails where that registry cannot be reached; the engine's built-in frontend (Docker
# 20.10 and later) handles every instruction here.

# The base image, from a mirror or a private registry if need be (compose: PYTHON_IMAGE).
# Any image with Python 3.11+ at /usr/local/bin/python, pip, and useradd will do.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- stage 1: the locked wheels, hashes checked (nothing of this stage reaches the image) ----
# Wheels only: a wheel built here from a source archive would not match the lock's hashes.
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /build
COPY requirements.txt .
# pip's settings for this step only, as build secrets (compose: PIP_BUILD_CONFIG, a pip.conf
# naming a PyPI mirror; PIP_BUILD_CA, the CA bundle of an intercepting proxy). Secrets are
# never part of a layer, and this stage is discarded anyway; absent or empty, pip's
# defaults apply.
RUN --mount=type=secret,id=pip_config \
    --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_config ]; then export PIP_CONFIG_FILE=/run/secrets/pip_config; fi \
    && if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && pip download --no-cache-dir --require-hashes --no-deps --only-binary=:all: \
       --dest /wheels -r requirements.txt

# ---- stage 2: runtime ----
FROM ${PYTHON_IMAGE} AS runtime

# Set at build time, e.g. --build-arg IMAGE_SOURCE=<repository URL> (compose: build.args).
ARG IMAGE_SOURCE=""
ARG IMAGE_LICENSES="NOASSERTION"
LABEL org.opencontainers.image.title="tasks-service" \
      org.opencontainers.image.description="Accounts, revocable server-side sessions and per-user tasks (FastAPI, PostgreSQL, Redis)." \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.licenses="${IMAGE_LICENSES}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/tasks-service-metrics

# A fixed numeric id, so orchestrators can check runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

# Dependencies first, in their own layer: it is rebuilt only when requirements.txt changes.
# The wheels are bind-mounted from the builder, so they never land in a layer; their hashes
# are checked again against the lock, and --no-deps installs nothing the lock does not list.
RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --no-cache-dir --no-index --find-links=/tmp/wheels \
       --require-hashes --no-deps -r /tmp/requirements.txt

WORKDIR /app
# Only what the app needs (the .dockerignore keeps caches, tests and secrets out as well).
# Files stay owned by root: the app user can read them, not change them.
COPY alembic.ini ./
COPY db/ db/
COPY sessions/ sessions/
COPY service/ service/
COPY --chmod=0755 scripts/ scripts/
# Compiled once here, since PYTHONDONTWRITEBYTECODE stops the app from writing .pyc files.
# The BuildKit of Docker 20.10 leaves the wheels' mount point behind, empty: removed too.
RUN python -m compileall -q db sessions service scripts \
    && rm -rf /tmp/wheels

USER 10001:10001
EXPOSE 8000

# No curl in the slim image: the standard library does the request. urlopen raises on any
# status other than 2xx, so 503 (PostgreSQL or Redis down) marks the container unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health/ready', timeout=4)"]

# Waits for PostgreSQL and Redis, runs `alembic upgrade head`, then execs uvicorn: no shell
# stays in between, so SIGTERM reaches uvicorn, which shuts down gracefully. Any other
# command is run as given.
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["serve"]
