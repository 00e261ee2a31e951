"""The Redis session store on its own, against the real Redis."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sessions.keys import index_key, session_key
from sessions.refresh import RefreshToken
from sessions.store import CredentialsChanged, RotationResult, SessionStore, new_session_id
from tests.support.clock import FakeClock
from tests.support.redis_server import RedisServer


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _start(store: SessionStore, user_id: int, jti: str) -> tuple[str, RefreshToken]:
    session = store.create(
        user_id=user_id, credentials_version=1, jti=jti, ip="10.0.0.1", user_agent="ua"
    )
    return session.id, session.refresh


def _store(
    client: redis.Redis, ttl: int = 600, idle: int = 300, clock: FakeClock | None = None
) -> SessionStore:
    return SessionStore(
        client, session_ttl_seconds=ttl, idle_timeout_seconds=idle, clock=clock or time.time
    )


def test_keys_share_the_users_hash_tag_and_all_expire(client: redis.Redis) -> None:
    store = _store(client)
    session_id, refresh = _start(store, 424242, "j1")
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
    session_id, refresh = _start(store, 424243, "the-jti")
    raw: dict[bytes, bytes] = client.hgetall(session_key(424243, session_id))  # type: ignore[assignment]
    assert refresh.secret.encode() not in b"".join(raw.values())
    assert raw[b"jti"] == b"the-jti"
    store.revoke(user_id=424243, session_id=session_id)


def test_authenticate_checks_the_current_jti(client: redis.Redis) -> None:
    store = _store(client)
    session_id, refresh = _start(store, 424244, "old")
    assert store.authenticate(user_id=424244, session_id=session_id, jti="old")
    assert store.rotate(refresh, new_jti="new", issued_at=1).result is RotationResult.ROTATED
    assert not store.authenticate(user_id=424244, session_id=session_id, jti="old")
    assert store.authenticate(user_id=424244, session_id=session_id, jti="new")
    # The user id is part of the key: another user's id cannot reach this session.
    assert not store.authenticate(user_id=424245, session_id=session_id, jti="new")
    store.revoke_all(user_id=424244)


def test_last_seen_is_written_at_most_once_per_interval(client: redis.Redis) -> None:
    store = _store(client)
    session_id, _ = _start(store, 424246, "j")
    key = session_key(424246, session_id)
    first = client.hget(key, "last_seen_at")
    for _ in range(20):
        assert store.authenticate(user_id=424246, session_id=session_id, jti="j")
    assert client.hget(key, "last_seen_at") == first
    store.revoke_all(user_id=424246)


def test_listing_prunes_index_entries_of_sessions_that_expired(client: redis.Redis) -> None:
    store = _store(client)
    gone, _ = _start(store, 424247, "a")
    live, _ = _start(store, 424247, "b")
    client.delete(session_key(424247, gone))  # as if its TTL had fired
    assert [info.id for info in store.list_for_user(424247)] == [live]
    assert client.zrange(index_key(424247), 0, -1) == [live.encode()]
    assert store.revoke_all(user_id=424247) == 1


def test_idle_session_is_refused_even_before_redis_expires_it(client: redis.Redis) -> None:
    clock = FakeClock()
    store = _store(client, idle=100, clock=clock)
    session_id, _ = _start(store, 424248, "j")
    clock.advance(101)  # Redis's own TTL has not fired: only the store's check refuses
    assert not store.authenticate(user_id=424248, session_id=session_id, jti="j")
    assert client.exists(session_key(424248, session_id)) == 0


def test_activity_keeps_a_session_alive_until_its_absolute_end(client: redis.Redis) -> None:
    clock = FakeClock()
    store = _store(client, ttl=300, idle=100, clock=clock)
    idle, _ = _start(store, 424253, "idle")
    active, _ = _start(store, 424253, "active")
    for _ in range(5):  # t = 50, 100, ... 250: "last seen" is written each time (> 10 s)
        clock.advance(50)
        assert store.authenticate(user_id=424253, session_id=active, jti="active")
    assert not store.authenticate(user_id=424253, session_id=idle, jti="idle")
    clock.advance(49)  # t = 299
    assert store.authenticate(user_id=424253, session_id=active, jti="active")
    clock.advance(2)  # past the absolute end, however active
    assert not store.authenticate(user_id=424253, session_id=active, jti="active")
    assert store.list_for_user(424253) == []


def test_a_refresh_counts_as_activity(client: redis.Redis) -> None:
    clock = FakeClock()
    store = _store(client, idle=100, clock=clock)
    session_id, token = _start(store, 424254, "j0")
    for n in range(1, 4):
        clock.advance(80)  # each alone within the idle timeout, together well past it
        rotation = store.rotate(token, new_jti=f"j{n}", issued_at=int(clock()))
        assert rotation.result is RotationResult.ROTATED and rotation.refresh is not None
        token = rotation.refresh
    assert store.authenticate(user_id=424254, session_id=session_id, jti="j3")


def test_the_token_just_rotated_away_repeats_its_rotation_within_the_grace_period(
    client: redis.Redis,
) -> None:
    store = SessionStore(client, session_ttl_seconds=600, idle_timeout_seconds=300)
    session_id, first = _start(store, 424249, "a")
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
    clock = FakeClock()
    store = SessionStore(
        client,
        session_ttl_seconds=600,
        idle_timeout_seconds=300,
        refresh_grace_seconds=10,
        clock=clock,
    )
    session_id, first = _start(store, 424250, "a")
    second = store.rotate(first, new_jti="b", issued_at=1).refresh
    assert second is not None
    store.rotate(second, new_jti="c", issued_at=2)  # first is now two rotations old
    assert store.rotate(first, new_jti="d", issued_at=3).result is RotationResult.REUSED
    assert not store.authenticate(user_id=424250, session_id=session_id, jti="c")

    session_id, first = _start(store, 424250, "a")
    store.rotate(first, new_jti="b", issued_at=1)
    clock.advance(10.5)
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


def test_a_login_that_read_older_credentials_starts_no_session(client: redis.Redis) -> None:
    store = _store(client)
    keep, _ = _start(store, 424251, "a")
    _start(store, 424251, "b")
    # A password change to version 2 ends the others and remembers the version.
    assert store.revoke_all(user_id=424251, keep_session_id=keep, credentials_version=2) == 1
    with pytest.raises(CredentialsChanged):
        store.create(user_id=424251, credentials_version=1, jti="c", ip="ip", user_agent="ua")
    assert store.create(user_id=424251, credentials_version=2, jti="d", ip="ip", user_agent="ua")
    assert [info.id for info in store.list_for_user(424251)][-1] == keep
    store.revoke_all(user_id=424251)


def test_an_admin_finds_a_session_by_id_without_scanning(tmp_path: Path) -> None:
    private = RedisServer(log_path=tmp_path / "redis.log")
    private.start()
    try:
        own = redis.Redis.from_url(private.url)
        store = _store(own)
        session_id, _ = _start(store, 424252, "a")
        own.config_resetstat()
        found = store.find(session_id)
        assert found is not None and found.user_id == 424252
        assert store.find("no-such-session") is None
        stats = own.info("commandstats")
        assert "cmdstat_scan" not in stats and "cmdstat_keys" not in stats
    finally:
        private.stop()
