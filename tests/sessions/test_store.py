"""The Redis session store on its own, against the real Redis."""

import time
from collections.abc import Iterator

import pytest
import redis

from sessions.store import RotationResult, SessionStore, index_key, new_session_id, session_key


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _store(client: redis.Redis, ttl: int = 600, idle: int = 300) -> SessionStore:
    return SessionStore(client, session_ttl_seconds=ttl, idle_timeout_seconds=idle)


def test_keys_share_the_users_hash_tag_and_all_expire(client: redis.Redis) -> None:
    store = _store(client)
    session_id, refresh = store.create(user_id=424242, jti="j1", ip="10.0.0.1", user_agent="ua")
    assert isinstance(store.rotate(refresh, new_jti="j2")[0], RotationResult)
    keys = [key.decode() for key in client.scan_iter("*{u:424242}*")]
    assert sorted(k.split(":")[0] for k in keys) == ["session", "sessions", "spent"]
    for key in keys:
        ttl = client.ttl(key)
        assert 0 < ttl <= 601, key
    assert client.ttl(session_key(424242, session_id)) <= 300  # the idle timeout
    store.revoke_all(user_id=424242)


def test_the_stored_hash_holds_no_token_material(client: redis.Redis) -> None:
    store = _store(client)
    session_id, refresh = store.create(user_id=424243, jti="the-jti", ip="ip", user_agent="ua")
    raw: dict[bytes, bytes] = client.hgetall(session_key(424243, session_id))  # type: ignore[assignment]
    assert refresh.secret.encode() not in b"".join(raw.values())
    assert raw[b"jti"] == b"the-jti"
    store.revoke(user_id=424243, session_id=session_id)


def test_authenticate_checks_the_current_jti(client: redis.Redis) -> None:
    store = _store(client)
    session_id, refresh = store.create(user_id=424244, jti="old", ip="ip", user_agent="ua")
    assert store.authenticate(user_id=424244, session_id=session_id, jti="old")
    result, _ = store.rotate(refresh, new_jti="new")
    assert result is RotationResult.ROTATED
    assert not store.authenticate(user_id=424244, session_id=session_id, jti="old")
    assert store.authenticate(user_id=424244, session_id=session_id, jti="new")
    # The user id is part of the key: another user's id cannot reach this session.
    assert not store.authenticate(user_id=424245, session_id=session_id, jti="new")
    store.revoke_all(user_id=424244)


def test_last_seen_is_written_at_most_once_per_interval(client: redis.Redis) -> None:
    store = _store(client)
    session_id, _ = store.create(user_id=424246, jti="j", ip="ip", user_agent="ua")
    key = session_key(424246, session_id)
    first = client.hget(key, "last_seen_at")
    for _ in range(20):
        assert store.authenticate(user_id=424246, session_id=session_id, jti="j")
    assert client.hget(key, "last_seen_at") == first
    store.revoke_all(user_id=424246)


def test_listing_prunes_index_entries_of_sessions_that_expired(client: redis.Redis) -> None:
    store = _store(client)
    gone, _ = store.create(user_id=424247, jti="a", ip="ip", user_agent="ua")
    live, _ = store.create(user_id=424247, jti="b", ip="ip", user_agent="ua")
    client.delete(session_key(424247, gone))  # as if its TTL had fired
    assert [info.id for info in store.list_for_user(424247)] == [live]
    assert client.zrange(index_key(424247), 0, -1) == [live.encode()]
    assert store.revoke_all(user_id=424247) == 1


def test_idle_session_is_refused_even_before_redis_expires_it(client: redis.Redis) -> None:
    store = _store(client, idle=1)
    session_id, _ = store.create(user_id=424248, jti="j", ip="ip", user_agent="ua")
    client.persist(session_key(424248, session_id))  # take Redis's TTL out of the picture
    time.sleep(1.1)
    assert not store.authenticate(user_id=424248, session_id=session_id, jti="j")
    assert client.exists(session_key(424248, session_id)) == 0


def test_session_ids_never_start_with_a_dash() -> None:
    # One in 64 random URL-safe ids would; on a command line it reads as an option.
    ids = [new_session_id() for _ in range(5000)]
    assert not any(session_id.startswith("-") for session_id in ids)
    assert len(set(ids)) == len(ids)
    assert all(len(session_id) == 22 for session_id in ids)
