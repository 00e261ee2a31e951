"""The Redis client every part of the service uses, made from REDIS_URL."""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# redis-py 8 defaults to 5 s timeouts and 10 retries: far too long to hold a request
# while Redis is down. Fail fast, and let the caller answer 503. One retry, and only on a
# connection that broke (a pooled connection Redis dropped when it restarted), never on a
# timeout.
OPTIONS = {
    "timeout": 2,
    "socket_timeout": 1,
    "socket_connect_timeout": 1,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}


def connect(url: str, *, max_connections: int) -> redis.Redis:
    """A client on a bounded pool: a caller waits for a free connection (up to 2 s) rather
    than opening connections without bound."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        **OPTIONS,
    )
    return redis.Redis(connection_pool=pool)
