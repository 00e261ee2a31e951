"""The Redis client every part of the service uses, made from REDIS_URL.

One URL names one of three topologies; redis-py does the rest (discovery, failover,
redirects), and nothing here knows more about them than the URL says:

- `redis://[user:pass@]host[:port][/db]`, `rediss://...` (TLS), `unix://...`: one node.
- `redis+sentinel://[user:pass@]host[:port][,host[:port]...]/service_name[/db]`
  (`rediss+sentinel://` for TLS to the master): the master of `service_name`, found
  through the sentinels (port 26379 by default) and found again after a failover. Every
  command goes to the master: a replica may still hold a session that was revoked.
- `redis+cluster://[user:pass@]host[:port][,host[:port]...]` (`rediss+cluster://`):
  a Redis Cluster, reached through any of its nodes (port 6379 by default).

The same credentials are used for the sentinels and for the master, as the `limits`
library does with this form of URL.
"""

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

Topology = Literal["node", "sentinel", "cluster"]
Client = redis.Redis | RedisCluster
SENTINEL_PORT = 26379
REDIS_PORT = 6379
SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("node", False),
    "rediss": ("node", True),
    "unix": ("node", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}

# redis-py 8 defaults to 5 s timeouts and 10 retries: far too long to hold a request
# while Redis is down. Fail fast, and let the caller answer 503. One retry, and only on a
# connection that broke (a pooled connection Redis dropped when it restarted, or a master
# that failed over), never on a timeout.
SOCKET_TIMEOUT_SECONDS = 1.0
OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}


@dataclass(frozen=True, slots=True)
class RedisLocation:
    """Where REDIS_URL points, as parsed (`parse`)."""

    topology: Topology
    tls: bool
    hosts: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse(url: str) -> RedisLocation:
    """REDIS_URL's topology and parts; ValueError naming what is wrong (never the URL,
    which may hold a password)."""
    scheme, separator, _ = url.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"REDIS_URL must start with one of {known}")
    topology, tls = SCHEMES[scheme.lower()]
    if topology == "node":
        try:
            redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as error:
            raise ValueError(f"REDIS_URL is not a valid Redis URL: {error}") from None
        return RedisLocation("node", tls)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError("REDIS_URL takes no query string or fragment in this form")
    credentials, _, host_list = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    default_port = SENTINEL_PORT if topology == "sentinel" else REDIS_PORT
    hosts = tuple(_host_and_port(item, default_port) for item in host_list.split(","))
    segments = [unquote(segment) for segment in parts.path.split("/")[1:] if segment]
    service_name, db = "", 0
    if topology == "sentinel":
        if not segments or len(segments) > 2:
            raise ValueError(
                "REDIS_URL of the form redis+sentinel://host:port[,host:port...]/"
                "service_name[/db] needs the service name (and at most a db number)"
            )
        service_name = segments[0]
        db = _db_number(segments[1]) if len(segments) == 2 else 0
    elif segments:
        raise ValueError(
            "REDIS_URL of the form redis+cluster:// takes no path: a cluster has db 0 only"
        )
    return RedisLocation(
        topology,
        tls,
        hosts,
        service_name,
        db,
        unquote(username) or None,
        unquote(password) or None,
    )


def _host_and_port(item: str, default_port: int) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError("REDIS_URL names an empty host in its host list")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"REDIS_URL names a port that is not a number from 1 to 65535: {host}")
    return host, int(port_text)


def _db_number(text: str) -> int:
    if not text.isdigit():
        raise ValueError("REDIS_URL's db (after the service name) must be a number")
    return int(text)


def connect(
    url: str, *, max_connections: int, socket_timeout: float = SOCKET_TIMEOUT_SECONDS
) -> Client:
    """A client for REDIS_URL on a bounded pool of connections (per node, for a cluster).
    `socket_timeout` bounds every answer; raise it only to wait longer for replicas (WAIT)."""
    location = parse(url)
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    auth: dict[str, Any] = {"username": location.username, "password": location.password}
    options: dict[str, Any] = {**OPTIONS, "socket_timeout": socket_timeout, "retry": retry}
    if location.topology == "sentinel":
        sentinels = Sentinel(  # type: ignore[no-untyped-call]
            list(location.hosts),
            sentinel_kwargs={**auth, "socket_timeout": SOCKET_TIMEOUT_SECONDS,
                             "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS},
        )  # fmt: skip
        master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
            location.service_name,
            db=location.db,
            max_connections=max_connections,
            ssl=location.tls,
            **auth,
            **options,
        )
        return master
    if location.topology == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in location.hosts],  # type: ignore[no-untyped-call]
            max_connections=max_connections,
            ssl=location.tls,
            **auth,
            **options,
        )
    # One node: a caller waits for a free connection (up to 2 s) rather than opening
    # connections without bound.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=2, **options
    )
    return redis.Redis(connection_pool=pool)


def node_for(client: Client, key: str) -> redis.Redis:
    """The client that talks to the node holding `key`: the client itself, except in a
    Cluster, where it is that node's own client. A write and the WAIT that makes it
    durable must travel on one connection to one node (WAIT names no key, so a Cluster
    client would send it to any node)."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        node_client: redis.Redis = client.get_redis_connection(node)
        return node_client
    return client
