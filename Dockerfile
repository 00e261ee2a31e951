# syntax=docker/dockerfile:1
# Image of the tasks service. BuildKit (the default builder since Docker 23) is required
# for the bind mount that installs the wheels without keeping them in a layer.
#
#   docker build -t tasks-service .
#   docker run --env-file .env -p 8000:8000 tasks-service        # serve (the default)
#   docker run --env-file .env tasks-service python -m scripts.sessions list

# ---- stage 1: wheels for every requirement (nothing of this stage reaches the image) ----
FROM python:3.12-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

# ---- stage 2: runtime ----
FROM python:3.12-slim-bookworm AS runtime

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
    PORT=8000

# A fixed numeric id, so orchestrators can check runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

# Dependencies first, in their own layer: it is rebuilt only when requirements.txt changes.
# The wheels are bind-mounted from the builder, so they never land in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --no-cache-dir --no-index --find-links=/wheels -r /tmp/requirements.txt

WORKDIR /app
# Only what the app needs (the .dockerignore keeps caches, tests and secrets out as well).
# Files stay owned by root: the app user can read them, not change them.
COPY alembic.ini ./
COPY db/ db/
COPY sessions/ sessions/
COPY service/ service/
COPY --chmod=0755 scripts/ scripts/
# Compiled once here, since PYTHONDONTWRITEBYTECODE stops the app from writing .pyc files.
RUN python -m compileall -q db sessions service scripts

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
