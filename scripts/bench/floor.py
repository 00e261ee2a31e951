"""The floors speed is judged against, with nothing of the project imported: what FastAPI
and uvicorn do with no work (`/sync`, `/async`), and with exactly the two round trips an
authenticated read cannot avoid (`/io`: one Redis GET and one PostgreSQL `SELECT 1` in a
`def` endpoint, pooled, autocommit, plain redis-py and SQLAlchemy defaults). `/io` is the
design's limit: a share of it is what docs/performance.md reports.

Environment: FLOOR_DATABASE_URL and FLOOR_REDIS_URL (default: DATABASE_URL and REDIS_URL),
FLOOR_THREADS (2: the service's request threads per worker; the pool gets two more).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import redis
import sqlalchemy
from fastapi import FastAPI

THREADS = int(os.environ.get("FLOOR_THREADS", "2"))
_redis = redis.Redis.from_url(
    os.environ.get("FLOOR_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
)
_engine = sqlalchemy.create_engine(
    os.environ.get(
        "FLOOR_DATABASE_URL",
        os.environ.get("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
    ),
    isolation_level="AUTOCOMMIT",
    pool_size=THREADS + 2,
)
_ONE = sqlalchemy.text("SELECT 1")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/async")
async def async_floor() -> dict[str, object]:
    return {"status": "ok", "id": 1}


@app.get("/sync")
def sync_floor() -> dict[str, object]:
    return {"status": "ok", "id": 1}


@app.get("/io")
def io_floor() -> dict[str, object]:
    _redis.get("floor")
    with _engine.connect() as connection:
        connection.execute(_ONE).scalar()
    return {"status": "ok", "id": 1}
