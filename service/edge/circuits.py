"""Circuit breakers (pybreaker) around Redis and PostgreSQL: a dependency that times out or
refuses connections a few times in a row is not asked again for a while, so requests that
need it get their 503 in milliseconds instead of each waiting out its own timeout. After
`reset_timeout` (half a second) one call is let through (half-open) while every other is
still refused; its success closes the circuit, so a worker serves again within about half
a second of the dependency's return (a readiness probe is such a call too).

The guards sit at our own call sites, one per unit of work: the session store's and the
rate-limit storage's calls to Redis, the reset tokens', and `Database.session` (they take
`Circuit.guard` as a plain context manager factory). An authenticated read passes one
Redis guard and one PostgreSQL guard.

Only signs that the server is gone or hung count: a connection refused or lost for good
(redis-py retries a pooled connection that the server dropped once, on a new one), an
answer that never came. A wrong query or a NOSCRIPT answer proves the server is there.
"""

import socket
import threading
from collections.abc import Callable
from typing import Any

import pybreaker
import redis
from sqlalchemy import exc as sqlalchemy_errors

from service import metrics
from service.logging import get_logger

log = get_logger("service")
STATES = {"closed": 0, "half-open": 1, "open": 2}


class CircuitOpen(Exception):
    """The dependency failed just now; it is not asked again until the circuit half-opens."""

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} circuit open")
        self.dependency = dependency


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, dependency: str) -> None:
        self.dependency = dependency

    def failure(self, breaker: pybreaker.CircuitBreaker, error: BaseException) -> None:
        metrics.DEPENDENCY_ERRORS.labels(dependency=self.dependency).inc()

    def state_change(self, breaker: pybreaker.CircuitBreaker, old: Any, new: Any) -> None:
        metrics.CIRCUIT_STATE.labels(dependency=self.dependency).set(STATES[new.name])
        level = log.warning if new.name == "open" else log.info
        level("circuit_" + new.name.replace("-", "_"), dependency=self.dependency)


class Circuit:
    def __init__(
        self,
        dependency: str,
        *,
        counts: Callable[[BaseException], bool],
        fail_max: int = 2,
        reset_timeout: float = 0.5,
    ) -> None:
        self.dependency = dependency
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=[lambda error: not counts(error)],
            listeners=[_Listener(dependency)],
            name=dependency,
            # The dependency's own error goes on up (and is answered 503 as such).
            throw_new_error_on_trip=False,
        )
        metrics.CIRCUIT_STATE.labels(dependency=dependency).set(0)
        self._trial = threading.Lock()
        self._inside = threading.local()

    @property
    def state(self) -> str:
        return str(self._breaker.current_state)

    def guard(self) -> "_Guard":
        """A context manager that runs its block under the breaker: CircuitOpen at once
        while it is open, and while another call is the one trial of a half-open circuit.
        A guard inside another of the same circuit, in the same thread, is part of it:
        one unit of work, one call."""
        return _Guard(self)


class _Guard:
    """Circuit.guard's context manager: a class rather than a generator, as it runs
    around every unit of work."""

    __slots__ = ("_call", "_circuit", "_trial")

    def __init__(self, circuit: Circuit) -> None:
        self._circuit = circuit
        self._call: Any = None
        self._trial = False

    def __enter__(self) -> None:
        circuit = self._circuit
        if getattr(circuit._inside, "guarded", False):
            return  # part of the guard around it
        if circuit._breaker.current_state != "closed":
            # pybreaker lets every call through once the timeout is over; one is enough.
            self._trial = circuit._trial.acquire(blocking=False)
            if not self._trial:
                raise CircuitOpen(circuit.dependency)
        self._call = circuit._breaker.calling()
        try:
            self._call.__enter__()
        except pybreaker.CircuitBreakerError:
            self._release()
            raise CircuitOpen(circuit.dependency) from None
        circuit._inside.guarded = True

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        if self._call is None:
            return False
        self._circuit._inside.guarded = False
        try:
            return bool(self._call.__exit__(kind, error, traceback))
        except pybreaker.CircuitBreakerError:
            raise CircuitOpen(self._circuit.dependency) from None
        finally:
            self._release()

    def _release(self) -> None:
        if self._trial:
            self._trial = False
            self._circuit._trial.release()


def _redis_failure(error: BaseException) -> bool:
    return isinstance(error, redis.ConnectionError | redis.TimeoutError | socket.timeout)


# libpq's words for a server that cannot be reached, and db.timeouts' for one that does
# not answer.
_UNREACHABLE = ("connection to server", "could not connect", "no answer within", "timeout expired")


def _database_failure(error: BaseException) -> bool:
    if isinstance(error, sqlalchemy_errors.TimeoutError):
        return True  # no pooled connection came free: they are all waiting on the server
    if isinstance(error, sqlalchemy_errors.OperationalError):
        message = str(error.orig or error)
        return any(words in message for words in _UNREACHABLE)
    return False


def redis_circuit() -> Circuit:
    return Circuit("redis", counts=_redis_failure)


def database_circuit() -> Circuit:
    return Circuit("postgresql", counts=_database_failure)
