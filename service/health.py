"""Readiness: can this worker reach PostgreSQL and Redis right now?

Answered on the event loop, never in the request pool, so neither a flood of probes nor a
hung dependency can take the threads requests need: both pings run in the worker's one
operations thread. Each check is bounded in time, one check runs at a time, and its result
is reused for a second, so a flood of probes costs about one check per second.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from service.logging import get_logger

log = get_logger("health")
CHECK_TIMEOUT_SECONDS = 2.0
REUSE_SECONDS = 1.0


class Readiness:
    def __init__(self, checks: dict[str, Callable[[], Awaitable[Any]]]) -> None:
        self._checks = checks
        self._last: tuple[float, dict[str, bool]] | None = None
        self._running: asyncio.Task[dict[str, bool]] | None = None

    async def status(self) -> dict[str, bool]:
        """Each dependency's name and whether it answered."""
        if self._last is not None and time.monotonic() - self._last[0] < REUSE_SECONDS:
            return self._last[1]
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._check_all())
        return await asyncio.shield(self._running)

    async def _check_all(self) -> dict[str, bool]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._check(name) for name in names))
        status = dict(zip(names, results, strict=True))
        self._last = (time.monotonic(), status)
        return status

    async def _check(self, name: str) -> bool:
        try:
            await asyncio.wait_for(self._checks[name](), CHECK_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 (any failure means "not ready")
            log.warning("dependency_unavailable", dependency=name, error=type(error).__name__)
            return False
        return True
