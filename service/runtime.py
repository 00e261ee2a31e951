"""The long-lived objects of one app instance, built from Settings at start."""

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis
from fastapi.routing import APIRoute
from redis.asyncio import BlockingConnectionPool as AsyncBlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from db.engine import Database, make_engine
from service.circuits import (
    Circuit,
    database_circuit,
    guarded_async_connection_class,
    guarded_connection_class,
    redis_circuit,
)
from service.config import Settings
from service.health import Readiness
from service.mail import Mailer, Outbox, SmtpSettings
from service.ratelimit import RateLimits
from service.routing import app_route_class
from service.services.accounts import AccountService
from service.services.passwords import PasswordService
from service.services.sessions import SessionService
from service.services.tasks import TaskService
from service.threads import WorkerThreads
from sessions.passwords import PasswordHasher
from sessions.resets import ResetTokens
from sessions.store import SessionStore
from sessions.tokens import TokenCodec

# redis-py 8 defaults to 5 s timeouts and 10 retries: far too long to hold a request
# while Redis is down. Fail fast, and let the caller answer 503. One retry, and only on a
# connection that broke (a pooled connection Redis dropped when it restarted), never on a
# timeout.
REDIS_OPTIONS = {
    "timeout": 2,
    "socket_timeout": 1,
    "socket_connect_timeout": 1,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}
# The event loop's session checks share these; a request waits for one (up to `timeout`)
# rather than opening connections without bound.
ASYNC_REDIS_CONNECTIONS = 32


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: redis.Redis
    async_redis: AsyncRedis
    sessions: SessionStore
    tokens: TokenCodec
    passwords: PasswordHasher
    limits: RateLimits
    threads: WorkerThreads
    outbox: Outbox
    accounts: AccountService
    session_service: SessionService
    password_service: PasswordService
    tasks: TaskService
    redis_circuit: Circuit
    database_circuit: Circuit
    readiness: Readiness

    @cached_property
    def route_class(self) -> type[APIRoute]:
        """The class of every route of the API (service.routing)."""
        return app_route_class(self.limits, self.threads)

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        database_breaker, redis_breaker = database_circuit(), redis_circuit()
        database = Database(
            make_engine(
                settings.database_url,
                pool_size=settings.database_pool_size,
                statement_timeout_ms=settings.db_statement_timeout_ms,
            ),
            guard=database_breaker.guard,
        )
        # One pool for the session store and the rate limiter: a connection per thread.
        redis_client = make_redis(
            settings.redis_url, max_connections=settings.worker_threads, circuit=redis_breaker
        )
        async_redis = make_async_redis(settings.redis_url, circuit=redis_breaker)
        sessions = SessionStore(
            redis_client,
            async_redis=async_redis,
            session_ttl_seconds=settings.session_ttl_seconds,
            idle_timeout_seconds=settings.session_idle_timeout_seconds,
            refresh_grace_seconds=settings.refresh_grace_seconds,
            max_sessions_per_user=settings.max_sessions_per_user,
        )
        tokens = TokenCodec(
            secret=settings.jwt_secret.get_secret_value(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )
        passwords = PasswordHasher(concurrency=settings.password_hash_concurrency)
        threads = WorkerThreads(
            request_threads=settings.thread_pool_size,
            password_threads=settings.password_threads,
        )
        accounts = AccountService(
            database=database, sessions=sessions, tokens=tokens, passwords=passwords
        )
        outbox = Outbox()
        return cls(
            settings=settings,
            database=database,
            redis=redis_client,
            async_redis=async_redis,
            sessions=sessions,
            tokens=tokens,
            passwords=passwords,
            limits=RateLimits(
                connection_pool=redis_client.connection_pool,
                budget=settings.rate_limit,
                login=settings.login_rate_limit,
                login_account=settings.login_account_rate_limit,
                register=settings.register_rate_limit,
                password_reset=settings.password_reset_rate_limit,
                canonical_email_of=accounts.canonical_email_of,
            ),
            threads=threads,
            outbox=outbox,
            accounts=accounts,
            session_service=SessionService(sessions=sessions),
            password_service=PasswordService(
                database=database,
                accounts=accounts,
                sessions=sessions,
                passwords=passwords,
                resets=ResetTokens(redis_client, ttl_seconds=settings.password_reset_ttl_seconds),
                mailer=Mailer(
                    _smtp_settings(settings), log_instead=settings.app_env != "production"
                ),
                outbox=outbox,
                reset_url=settings.password_reset_url,
            ),
            tasks=TaskService(database=database),
            redis_circuit=redis_breaker,
            database_circuit=database_breaker,
            readiness=Readiness(
                {
                    "postgresql": lambda: threads.run_operation(database.ping),
                    "redis": async_redis.ping,
                }
            ),
        )

    async def close(self) -> None:
        self.threads.shutdown()
        self.outbox.close()
        await self.async_redis.aclose()
        self.database.dispose()
        self.redis.close()


def _smtp_settings(settings: Settings) -> SmtpSettings:
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        tls=settings.smtp_tls,
        sender=settings.mail_from,
    )


def make_redis(url: str, *, max_connections: int, circuit: Circuit | None = None) -> redis.Redis:
    extra: dict[str, Any] = {}
    if circuit is not None:
        extra["connection_class"] = guarded_connection_class(url, circuit)
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        **REDIS_OPTIONS,
        **extra,
    )
    return redis.Redis(connection_pool=pool)


def make_async_redis(url: str, *, circuit: Circuit) -> AsyncRedis:
    pool = AsyncBlockingConnectionPool.from_url(
        url,
        max_connections=ASYNC_REDIS_CONNECTIONS,
        retry=AsyncRetry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        connection_class=guarded_async_connection_class(url, circuit),
        **REDIS_OPTIONS,
    )
    return AsyncRedis(connection_pool=pool)
