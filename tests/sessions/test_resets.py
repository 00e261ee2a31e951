"""Reset tokens on their own, against the real Redis: every outstanding token works until
it is used or expires, or another is used."""

from collections.abc import Iterator

import pytest
import redis

from sessions.resets import MAX_OUTSTANDING, ResetToken, ResetTokens, reset_key
from tests.support.clock import FakeClock


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_tokens_do_not_void_each_other_and_one_use_spends_all(client: redis.Redis) -> None:
    resets = ResetTokens(client, ttl_seconds=600)
    tokens = [resets.issue(901) for _ in range(3)]
    assert all(resets.is_current(token) for token in tokens)
    assert resets.spend(tokens[1])
    assert not any(resets.is_current(token) for token in tokens)
    assert not resets.spend(tokens[0])


def test_each_token_expires_on_its_own(client: redis.Redis) -> None:
    clock = FakeClock()
    resets = ResetTokens(client, ttl_seconds=600, clock=clock)
    older = resets.issue(902)
    clock.advance(400)
    newer = resets.issue(902)
    clock.advance(300)
    assert not resets.is_current(older) and not resets.spend(older)
    assert resets.is_current(newer)
    # The key lives as long as its newest token, in the user's hash tag.
    assert reset_key(902) == "password-reset:{u:902}"
    assert 0 < client.pttl(reset_key(902)) <= 600_000
    assert resets.spend(newer)


def test_only_hashes_are_stored_and_outstanding_tokens_are_bounded(client: redis.Redis) -> None:
    resets = ResetTokens(client, ttl_seconds=600)
    tokens = [resets.issue(903) for _ in range(MAX_OUTSTANDING + 5)]
    stored = client.zrange(reset_key(903), 0, -1)
    assert len(stored) == MAX_OUTSTANDING
    assert not any(token.secret.encode() in member for token in tokens for member in stored)
    assert not resets.is_current(tokens[0])  # the oldest went first
    assert resets.is_current(tokens[-1])


def test_another_accounts_id_with_a_valid_secret_is_unknown(client: redis.Redis) -> None:
    resets = ResetTokens(client, ttl_seconds=600)
    token = resets.issue(904)
    assert not resets.is_current(ResetToken(905, token.secret))


@pytest.mark.parametrize(
    "value", ["", "1.short", "0." + "A" * 43, "²." + "A" * 43, "1." + "A" * 300, "1.\ud800" * 30]
)
def test_malformed_tokens_do_not_parse(value: str) -> None:
    assert ResetToken.parse(value) is None
