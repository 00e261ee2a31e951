"""The floors the scenarios are read against, served like the service (same uvicorn
settings, same thread pool size, same pools):

- `/floor`: a `def` endpoint that does nothing: what this stack costs with no work at all;
- `/io-floor`: a `def` endpoint that makes one Redis GET and one PostgreSQL `SELECT 1`
  (pooled, autocommit, on the service's own engine and Redis settings): the least any
  authenticated read can do here.

Reads DATABASE_URL, REDIS_URL and the thread settings from the environment, as the service.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import text

from db.engine import make_engine
from service.config import get_settings
from sessions.redis_client import connect

settings = get_settings()
engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
redis_client = connect(settings.redis_url, max_connections=settings.worker_threads)
SELECT_ONE = text("SELECT 1")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
    yield
    engine.dispose()
    redis_client.close()


app = FastAPI(lifespan=lifespan)


@app.get("/floor")
def floor() -> dict[str, bool]:
    return {"ok": True}


@app.get("/io-floor")
def io_floor() -> dict[str, bool]:
    redis_client.get("bench:io-floor")
    with engine.connect() as connection:
        connection.execute(SELECT_ONE)
    return {"ok": True}
