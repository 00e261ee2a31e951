"""The Redis session store on its own, against the real Redis."""

import time
from collections.abc import Iterator

import pytest
import redis

from sessions.store import (
    RefreshToken,
    RotationResult,
    SessionStore,
    index_key,
    new_session_id,
    session_key,
)


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
    assert store.rotate(refresh, new_jti="j2", issued_at=1).result is RotationResult.ROTATED
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
    assert store.rotate(refresh, new_jti="new", issued_at=1).result is RotationResult.ROTATED
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


def test_the_token_just_rotated_away_repeats_its_rotation_within_the_grace_period(
    client: redis.Redis,
) -> None:
    store = SessionStore(client, session_ttl_seconds=600, idle_timeout_seconds=300)
    session_id, first = store.create(user_id=424249, jti="a", ip="ip", user_agent="ua")
    rotated = store.rotate(first, new_jti="b", issued_at=100)
    again = store.rotate(first, new_jti="c", issued_at=200)
    assert again.result is RotationResult.REPEATED
    assert (again.jti, again.issued_at, again.refresh) == ("b", 100, rotated.refresh)
    assert store.authenticate(user_id=424249, session_id=session_id, jti="b")
    # The successor is derived, not stored: Redis holds no secret of it.
    assert rotated.refresh is not None
    stored: dict[bytes, bytes] = client.hgetall(session_key(424249, session_id))  # type: ignore[assignment]
    raw = b"".join(stored.values())
    assert rotated.refresh.secret.encode() not in raw
    store.revoke_all(user_id=424249)


def test_a_spent_token_after_the_grace_period_revokes_the_session(client: redis.Redis) -> None:
    store = SessionStore(
        client, session_ttl_seconds=600, idle_timeout_seconds=300, refresh_grace_seconds=0.2
    )
    session_id, first = store.create(user_id=424250, jti="a", ip="ip", user_agent="ua")
    second = store.rotate(first, new_jti="b", issued_at=1).refresh
    assert second is not None
    store.rotate(second, new_jti="c", issued_at=2)  # first is now two rotations old
    assert store.rotate(first, new_jti="d", issued_at=3).result is RotationResult.REUSED
    assert not store.authenticate(user_id=424250, session_id=session_id, jti="c")

    session_id, first = store.create(user_id=424250, jti="a", ip="ip", user_agent="ua")
    store.rotate(first, new_jti="b", issued_at=1)
    time.sleep(0.3)
    assert store.rotate(first, new_jti="c", issued_at=2).result is RotationResult.REUSED
    assert not store.authenticate(user_id=424250, session_id=session_id, jti="b")


@pytest.mark.parametrize(
    "value",
    ["", "1.a", "0.abc.def", "².abc.def", "1.abc.de.f", "1.a b.c", "1.ab\u00e9.c", "x" * 300],
)
def test_malformed_refresh_tokens_do_not_parse(value: str) -> None:
    assert RefreshToken.parse(value) is None


def test_session_ids_never_start_with_a_dash() -> None:
    # One in 64 random URL-safe ids would; on a command line it reads as an option.
    ids = [new_session_id() for _ in range(5000)]
    assert not any(session_id.startswith("-") for session_id in ids)
    assert len(set(ids)) == len(ids)
    assert all(len(session_id) == 22 for session_id in ids)
