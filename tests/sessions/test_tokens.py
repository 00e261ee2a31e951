"""Access tokens on their own: issued, verified, expired (on a clock the test moves)."""

import pytest

from sessions.tokens import InvalidTokenError, TokenCodec
from tests.support.clock import FakeClock

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def _codec(clock: FakeClock, ttl: int = 900) -> TokenCodec:
    return TokenCodec(secret=SECRET, issuer="iss", audience="aud", ttl_seconds=ttl, clock=clock)


def test_a_token_verifies_until_it_expires_plus_one_second_of_leeway() -> None:
    clock = FakeClock(1_800_000_000)
    codec = _codec(clock)
    token = codec.issue(user_id=7, session_id="s", jti="j", issued_at=int(clock()))
    assert codec.verify(token).user_id == 7
    clock.advance(900)  # exp itself: still within the leeway
    assert codec.verify(token).session_id == "s"
    clock.advance(1)
    with pytest.raises(InvalidTokenError):
        codec.verify(token)


def test_the_same_claims_give_the_same_token() -> None:
    codec = _codec(FakeClock())
    first = codec.issue(user_id=7, session_id="s", jti="j", issued_at=1_800_000_000)
    assert codec.issue(user_id=7, session_id="s", jti="j", issued_at=1_800_000_000) == first
    assert codec.issue(user_id=7, session_id="s", jti="k", issued_at=1_800_000_000) != first


def test_a_token_verified_once_is_still_refused_by_another_key_or_when_altered() -> None:
    clock = FakeClock(1_800_000_000)
    codec = _codec(clock)
    token = codec.issue(user_id=7, session_id="s", jti="j", issued_at=int(clock()))
    assert codec.verify(token).jti == "j"  # verified, and remembered by this codec
    other = TokenCodec(
        secret=SECRET + "-rotated", issuer="iss", audience="aud", ttl_seconds=900, clock=clock
    )
    with pytest.raises(InvalidTokenError):
        other.verify(token)
    header, claims, signature = token.split(".")
    altered = ".".join(
        (header, claims, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"))
    )
    with pytest.raises(InvalidTokenError):
        codec.verify(altered)


def test_a_token_first_seen_after_its_expiry_is_refused() -> None:
    clock = FakeClock(1_800_000_000)
    codec = _codec(clock)
    token = codec.issue(user_id=7, session_id="s", jti="j", issued_at=int(clock()) - 1000)
    with pytest.raises(InvalidTokenError):
        codec.verify(token)
