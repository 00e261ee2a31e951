"""The long-lived objects of one app instance, built from Settings at start."""

from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from db.engine import Database, make_engine
from service.config import Settings
from service.ratelimit import RateLimits
from service.threads import WorkerThreads
from sessions.passwords import PasswordHasher
from sessions.store import SessionStore
from sessions.tokens import TokenCodec


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: redis.Redis
    sessions: SessionStore
    tokens: TokenCodec
    passwords: PasswordHasher
    limits: RateLimits
    threads: WorkerThreads

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        engine = make_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        database = Database(engine)
        redis_client = make_redis(settings.redis_url, max_connections=settings.worker_threads + 8)
        return cls(
            settings=settings,
            database=database,
            redis=redis_client,
            sessions=SessionStore(
                redis_client,
                session_ttl_seconds=settings.session_ttl_seconds,
                idle_timeout_seconds=settings.session_idle_timeout_seconds,
            ),
            tokens=TokenCodec(
                secret=settings.jwt_secret,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            passwords=PasswordHasher(concurrency=settings.password_hash_concurrency),
            limits=RateLimits(
                redis_client,
                redis_url=settings.redis_url,
                budget=settings.rate_limit,
                login=settings.login_rate_limit,
                register=settings.register_rate_limit,
            ),
            threads=WorkerThreads(
                request_threads=settings.thread_pool_size,
                password_threads=settings.password_threads,
            ),
        )

    def close(self) -> None:
        self.threads.shutdown()
        self.database.dispose()
        self.redis.close()


def make_redis(url: str, *, max_connections: int) -> redis.Redis:
    # redis-py 8 defaults to 5 s timeouts and 10 retries: far too long to hold a request
    # while Redis is down. Fail fast, and let the caller answer 503.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=2,
        socket_timeout=1,
        socket_connect_timeout=1,
        health_check_interval=30,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
    )
    return redis.Redis(connection_pool=pool)
