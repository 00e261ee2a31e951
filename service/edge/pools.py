"""The worker process's thread pools: where every request's blocking work runs, in one hop
from the event loop (service.edge.route)."""

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

Pool = Literal["requests", "passwords"]
T = TypeVar("T")


@dataclass(frozen=True)
class Pools:
    """Each sized by its own setting: few request threads contend less for the GIL, and the
    routes that hash a password have their own, so a login storm queues there without
    taking a thread that reads need. Executors of our own rather than AnyIO's worker
    threads behind a capacity limiter: the hop measured cheaper (docs/performance.md)."""

    requests: ThreadPoolExecutor
    passwords: ThreadPoolExecutor
    # Metrics: never in a pool that requests wait for (readiness has threads of its own).
    operations: ThreadPoolExecutor

    @classmethod
    def build(cls, *, requests: int, passwords: int) -> "Pools":
        return cls(
            ThreadPoolExecutor(requests, thread_name_prefix="request"),
            ThreadPoolExecutor(passwords, thread_name_prefix="password"),
            ThreadPoolExecutor(1, thread_name_prefix="operations"),
        )

    async def run(self, pool: Pool, call: Callable[[], T]) -> T:
        """Run `call` in a thread of `pool`, in a copy of the caller's context (the request
        id bound for logging goes along)."""
        return await _run_in(self.passwords if pool == "passwords" else self.requests, call)

    async def run_operation(self, call: Callable[[], T]) -> T:
        """Run `call` in the operations thread (the metrics' rendering)."""
        return await _run_in(self.operations, call)

    def shutdown(self) -> None:
        for pool in (self.requests, self.passwords, self.operations):
            pool.shutdown(wait=True)


async def _run_in(pool: ThreadPoolExecutor, call: Callable[[], T]) -> T:
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, context.run, call)
