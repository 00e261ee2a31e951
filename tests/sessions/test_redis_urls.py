"""REDIS_URL: one node, a Sentinel service or a Cluster, and a clear refusal otherwise."""

import pytest
from pydantic import ValidationError

from service.config import Settings
from sessions.redis_client import RedisLocation, parse


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", RedisLocation("node", False)),
        ("rediss://:secret@cache.example.com:6380/2", RedisLocation("node", True)),
        (
            "redis+sentinel://s1:26380,s2,[::1]:26381/tasks",
            RedisLocation(
                "sentinel", False, (("s1", 26380), ("s2", 26379), ("::1", 26381)), "tasks"
            ),
        ),
        (
            "redis+sentinel://app:p%40ss@s1:26379/tasks/3",
            RedisLocation("sentinel", False, (("s1", 26379),), "tasks", 3, "app", "p@ss"),
        ),
        (
            "rediss+cluster://:secret@n1:7000,n2",
            RedisLocation("cluster", True, (("n1", 7000), ("n2", 6379)), password="secret"),
        ),
    ],
)
def test_the_three_topologies_are_read_from_one_url(url: str, expected: RedisLocation) -> None:
    assert parse(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("memcached://127.0.0.1:11211", "must start with one of"),
        ("127.0.0.1:6379", "must start with one of"),
        ("redis://host:notaport/0", "not a valid Redis URL"),
        ("redis+sentinel://s1:26379", "needs the service name"),
        ("redis+sentinel://s1:26379/tasks/0/extra", "needs the service name"),
        ("redis+sentinel://s1:26379/tasks/zero", "db .after the service name. must be a number"),
        ("redis+sentinel://s1:99999/tasks", "port that is not a number"),
        ("redis+sentinel://s1:26379,,s2/tasks", "empty host"),
        ("redis+cluster://n1:7000/1", "takes no path"),
        ("redis+cluster://n1:7000?timeout=1", "no query string"),
    ],
)
def test_a_bad_url_is_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse(url)


def test_the_service_refuses_to_start_on_a_bad_url_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url="redis+sentinel://:hunter2hunter2@s1:26379")
    assert "service name" in str(refused.value)
    assert "hunter2hunter2" not in str(refused.value)
