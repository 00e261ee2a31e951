"""Readiness: would this worker serve a request that needs PostgreSQL and Redis, now?

A dependency is ready when its circuit breaker lets calls through and it answered a ping
within the last second. The ping runs under the same breaker as the requests: while the
breaker refuses requests, readiness says so without asking (no 200 while requests get a
503), and when it lets a trial through, the ping may be that trial (no 503 once requests
would be served). Answered on the event loop, never in the request pool: each dependency's
ping runs in a thread of its own (a hung PostgreSQL never holds up the Redis ping), bounded
in time, one at a time (a ping still hanging is waited for, not sent again), so a flood of
probes costs about one ping per dependency per second.
"""

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from db.schema import SchemaNotCurrent
from service.edge.circuits import Circuit
from service.logging import get_logger

log = get_logger("health")
CHECK_TIMEOUT_SECONDS = 2.0
REUSE_SECONDS = 1.0


@dataclass
class Dependency:
    circuit: Circuit
    # A blocking ping that runs under `circuit` (CircuitOpen at once while it refuses).
    ping: Callable[[], Any]
    answered_at: float = field(default=float("-inf"))
    # Why it is not ready, when the ping said so in words (SchemaNotCurrent).
    problem: str | None = None
    _thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="readiness")
    )
    _pinging: "asyncio.Future[Any] | None" = None

    def pinging(self) -> "asyncio.Future[Any]":
        """The ping in flight, or a new one when none is."""
        if self._pinging is None or self._pinging.done():
            loop = asyncio.get_running_loop()
            self._pinging = loop.run_in_executor(self._thread, self.ping)
        return self._pinging

    def ready(self, now: float) -> bool:
        """Whether it answered within a second before `now` (or after) and its circuit is
        closed now."""
        return self.circuit.state == "closed" and now - self.answered_at < REUSE_SECONDS


class Readiness:
    def __init__(self, dependencies: dict[str, Dependency]) -> None:
        self._dependencies = dependencies
        self._running: asyncio.Task[None] | None = None
        self._running_since = 0.0

    async def status(self) -> dict[str, bool]:
        """Each dependency's name and whether this worker would use it now."""
        asked = time.monotonic()
        if not all(d.ready(asked) for d in self._dependencies.values()):
            if self._running is None or self._running.done():
                self._running_since = asked
                self._running = asyncio.create_task(self._check_stale())
            await asyncio.shield(self._running)
            # Judged as of the check: an answer it got counts, however long another
            # dependency then took to fail.
            asked = min(asked, self._running_since)
        return {name: d.ready(asked) for name, d in self._dependencies.items()}

    async def _check_stale(self) -> None:
        now = time.monotonic()
        stale = {name: d for name, d in self._dependencies.items() if not d.ready(now)}
        await asyncio.gather(*(self._check(name, d) for name, d in stale.items()))

    async def _check(self, name: str, dependency: Dependency) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(dependency.pinging()), CHECK_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 (any failure means "not ready")
            dependency.answered_at = float("-inf")
            dependency.problem = str(error) if isinstance(error, SchemaNotCurrent) else None
            log.warning(
                "dependency_unavailable",
                dependency=name,
                error=type(error).__name__,
                problem=dependency.problem,
            )
        else:
            dependency.answered_at = time.monotonic()
            dependency.problem = None

    def problems(self) -> dict[str, str]:
        """Why each dependency that said so in words is not ready."""
        return {name: d.problem for name, d in self._dependencies.items() if d.problem}

    def close(self) -> None:
        for dependency in self._dependencies.values():
            dependency._thread.shutdown(wait=False, cancel_futures=True)
