"""The worker process's two thread pools, where the sync routes run.

SQLAlchemy and redis-py block, so route bodies are plain `def` code; the decorators in
`service.deps` run each one here in a single hand-off. The pools are the app's own rather
than AnyIO's process-wide default so that each is sized by its setting: a small request
pool (fewer threads contending for the GIL served reads faster, see the README's
Benchmark) and a separate one for the routes that hash a password, where a login storm
queues without holding a thread that other requests need. (Against AnyIO's pool of the
same size, the hand-off itself measured the same end to end.)
"""

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class WorkerThreads:
    def __init__(self, *, request_threads: int, password_threads: int) -> None:
        self._requests = ThreadPoolExecutor(request_threads, thread_name_prefix="request")
        self._passwords = ThreadPoolExecutor(password_threads, thread_name_prefix="password")

    async def run(self, call: Callable[[], T], *, hashes_passwords: bool = False) -> T:
        """Run `call` in a pool thread and wait for it without blocking the event loop.
        Context variables (the request id bound by the middleware) go with it."""
        pool = self._passwords if hashes_passwords else self._requests
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(pool, context.run, call)

    def shutdown(self) -> None:
        self._requests.shutdown(wait=True)
        self._passwords.shutdown(wait=True)
