"""The worker process's two thread pools, where the sync route code runs.

SQLAlchemy and redis-py block, so endpoints are plain `def` code; `AppRoute` hands each
call to one of these pools in a single hop. They are the app's own rather than AnyIO's
default limiter (FastAPI's `run_in_threadpool`) because that hop measured cheaper
(docs/performance.md) and because each pool is sized by its own setting: a small pool
for requests (few threads contend less for the GIL) and one for the routes that hash a
password, so that a login storm queues there without taking a thread that reads need.
"""

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Endpoint = Callable[..., Any]
HASHES_PASSWORDS = "hashes_passwords"


def hashes_passwords(endpoint: Endpoint) -> Endpoint:
    """Mark a route whose calls hash a password: it runs in the password pool."""
    setattr(endpoint, HASHES_PASSWORDS, True)
    return endpoint


class WorkerThreads:
    def __init__(self, *, request_threads: int, password_threads: int) -> None:
        self._requests = ThreadPoolExecutor(request_threads, thread_name_prefix="request")
        self._passwords = ThreadPoolExecutor(password_threads, thread_name_prefix="password")
        # Health checks and metrics: never in a pool that requests wait for.
        self._operations = ThreadPoolExecutor(1, thread_name_prefix="operations")

    async def run(self, call: Callable[[], T], *, hashes_passwords: bool = False) -> T:
        """Run `call` in a pool thread without blocking the event loop. It runs in a copy
        of the caller's context: the request id bound by the middleware goes with it, and
        what it sets stays with this call."""
        pool = self._passwords if hashes_passwords else self._requests
        return await self._run_in(pool, call)

    async def run_operation(self, call: Callable[[], T]) -> T:
        """Run `call` in the operations thread (health checks, metrics)."""
        return await self._run_in(self._operations, call)

    @staticmethod
    async def _run_in(pool: ThreadPoolExecutor, call: Callable[[], T]) -> T:
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(pool, context.run, call)

    def in_pool(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` as an async function that runs it in its pool; FastAPI still reads
        the original signature (functools.wraps)."""
        password_pool = bool(getattr(endpoint, HASHES_PASSWORDS, False))

        @functools.wraps(endpoint)
        async def run_in_pool(**arguments: Any) -> Any:
            call = functools.partial(endpoint, **arguments)
            return await self.run(call, hashes_passwords=password_pool)

        return run_in_pool

    def shutdown(self) -> None:
        for pool in (self._requests, self._passwords, self._operations):
            pool.shutdown(wait=True)
