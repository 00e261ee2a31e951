"""Circuit breakers (pybreaker) around Redis and PostgreSQL: a dependency that times out or
refuses connections a few times in a row is not asked again for a while, so requests that
need it get their 503 in milliseconds instead of each waiting out its own timeout. After
`reset_timeout` one call is let through (half-open) while every other is still refused; its
success closes the circuit.

Only signs that the server is gone or hung count: a connection refused, an answer that
never came. A wrong query or a NOSCRIPT answer proves the server is there, and so does a
pooled connection that the server dropped when it restarted (redis-py retries that once
on a new connection; SQLAlchemy's pool replaces it).
"""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pybreaker
import redis
import redis.asyncio
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
        reset_timeout: float = 3,
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

    @property
    def state(self) -> str:
        return str(self._breaker.current_state)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block under the breaker; CircuitOpen at once while it is open, and while
        another call is the one trial of a half-open circuit."""
        trial = False
        if self._breaker.current_state != "closed":
            # pybreaker lets every call through once the timeout is over; one is enough.
            trial = self._trial.acquire(blocking=False)
            if not trial:
                raise CircuitOpen(self.dependency)
        try:
            with self._breaker.calling():
                yield
        except pybreaker.CircuitBreakerError:
            raise CircuitOpen(self.dependency) from None
        finally:
            if trial:
                self._trial.release()


def _redis_failure(error: BaseException) -> bool:
    # ConnectionError counts only where it is raised under the breaker: by connect().
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


# Set while a connection method runs under a breaker: redis-py's send and read may connect
# on the way, and that is the same call.
_guarded: ContextVar[bool] = ContextVar("redis_call_guarded", default=False)


def _guard_raising_redis_errors(circuit: Circuit) -> Callable[[], Any]:
    @contextmanager
    def guard() -> Iterator[None]:
        if _guarded.get():
            yield
            return
        token = _guarded.set(True)
        try:
            with circuit.guard():
                yield
        except CircuitOpen as error:
            raise redis.ConnectionError(str(error)) from None
        finally:
            _guarded.reset(token)

    return guard


@contextmanager
def _dropped_connections_uncounted(guard: Callable[[], Any]) -> Iterator[None]:
    """`guard()`, except that a connection the server closed is re-raised outside it: on an
    established connection that says nothing of the server (it restarted, say)."""
    dropped: redis.ConnectionError | None = None
    with guard():
        try:
            yield
        except redis.TimeoutError:
            raise
        except redis.ConnectionError as error:
            dropped = error
    if dropped is not None:
        raise dropped


def guarded_connection_class(url: str, circuit: Circuit) -> type[redis.Connection]:
    """The connection class redis-py would pick for `url`, with its every connect, send
    and read run under `circuit`; while it is open they raise redis's own ConnectionError,
    which the service answers with 503."""
    guard = _guard_raising_redis_errors(circuit)
    base: type[redis.Connection] = redis.Connection
    if url.startswith("rediss://"):
        base = redis.SSLConnection
    elif url.startswith("unix://"):
        base = redis.UnixDomainSocketConnection  # type: ignore[assignment]

    class Guarded(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            # redis-py calls connect() before every command; one already made needs no
            # breaker (redis-py itself returns at once then).
            if self._sock is not None:
                return
            with guard():
                super().connect()

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            with _dropped_connections_uncounted(guard):
                super().send_packed_command(command, check_health)

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            with _dropped_connections_uncounted(guard):
                return super().read_response(*args, **kwargs)

    return Guarded


def guarded_async_connection_class(url: str, circuit: Circuit) -> type[redis.asyncio.Connection]:
    """`guarded_connection_class` for redis-py's asyncio client."""
    guard = _guard_raising_redis_errors(circuit)
    base: type[redis.asyncio.Connection] = redis.asyncio.Connection
    if url.startswith("rediss://"):
        base = redis.asyncio.SSLConnection
    elif url.startswith("unix://"):
        base = redis.asyncio.UnixDomainSocketConnection  # type: ignore[assignment]

    class Guarded(base):  # type: ignore[valid-type,misc]
        async def connect(self) -> None:
            if self.is_connected:
                return
            with guard():
                await super().connect()

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            with _dropped_connections_uncounted(guard):
                await super().send_packed_command(command, check_health)

        async def read_response(self, *args: Any, **kwargs: Any) -> Any:
            with _dropped_connections_uncounted(guard):
                return await super().read_response(*args, **kwargs)

    return Guarded
