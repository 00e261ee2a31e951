"""What one authenticated read costs in Redis: the session check, then SlowAPI's hit, two
commands (counted on a private redis-server, so nothing else adds to them)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.api import Api
from tests.support.live_server import StartServer
from tests.support.redis_server import RedisServer


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(log_path=tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


def _commands(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, dict[str, int]] = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in stats.items()
        if name not in ("cmdstat_info", "cmdstat_ping")
    }


def test_an_authenticated_read_is_the_session_check_and_one_hit(
    start_server: StartServer, private_redis: RedisServer
) -> None:
    api = Api(start_server(REDIS_URL=private_redis.url).url)
    tokens = api.new_user()
    task = api.create_task(tokens)
    client = redis.Redis.from_url(private_redis.url)
    assert api.get(f"/tasks/{task['id']}", headers=tokens.headers).status_code == 200
    before = _commands(client)
    for _ in range(10):
        response = api.get(f"/tasks/{task['id']}", headers=tokens.headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"]
    after = _commands(client)
    spent = {name: after[name] - before.get(name, 0) for name in after}
    sent = {name: calls for name, calls in spent.items() if calls}
    # Two scripts a read; commandstats counts the commands inside them as well: the
    # session check's HMGET, then the hit's INCRBY and PTTL. No GET or TTL: the headers
    # cost no read-back.
    assert sent == {"evalsha": 20, "hmget": 10, "incrby": 10, "pttl": 10}
