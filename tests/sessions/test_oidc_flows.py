"""What Redis keeps between the steps of a provider's sign-in (sessions/oidc.py): taken
once, kept briefly, and never the state or the login code themselves."""

from collections.abc import Iterator

import pytest
import redis

from sessions.oidc import (
    LOGIN_CODE_TTL_SECONDS,
    STATE_TTL_SECONDS,
    OidcFlows,
    PendingAuthorization,
    state_key,
)
from sessions.verifications import VerificationTokens, verification_key

PENDING = PendingAuthorization(
    provider="corp", nonce_hash="n" * 64, code_verifier="v" * 64, browser_hash="b" * 64
)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_a_state_is_taken_once_and_kept_ten_minutes_under_its_hash(client: redis.Redis) -> None:
    flows = OidcFlows(client)
    state = flows.begin(PENDING)
    assert len(state) >= 43  # 256 random bits
    key = state_key(state)
    assert state not in key and state not in str(client.get(key))
    assert 0 < client.ttl(key) <= STATE_TTL_SECONDS == 600
    assert flows.take(state) == PENDING
    assert flows.take(state) is None
    assert flows.take("") is None and flows.take("x" * 300) is None


def test_a_login_code_is_redeemed_once_and_lives_a_minute(client: redis.Redis) -> None:
    flows = OidcFlows(client)
    code = flows.issue_login_code(user_id=7, provider="corp")
    user_id, secret = code.split(".")
    assert user_id == "7" and len(secret) >= 43
    keys = list(client.scan_iter(match="oidc-login:{u:7}:*"))
    assert keys and all(secret.encode() not in key for key in keys)
    assert all(0 < client.ttl(key) <= LOGIN_CODE_TTL_SECONDS == 60 for key in keys)
    # Another account's id with this secret names nothing.
    assert flows.redeem_login_code(f"8.{secret}") is None
    redeemed = flows.redeem_login_code(code)
    assert redeemed is not None and (redeemed.user_id, redeemed.provider) == (7, "corp")
    assert flows.redeem_login_code(code) is None


def test_verification_tokens_live_under_their_own_key(client: redis.Redis) -> None:
    tokens = VerificationTokens(client, ttl_seconds=60)
    token = tokens.issue(11)
    assert client.exists(verification_key(11)) and verification_key(11).endswith("{u:11}")
    members = [str(member) for member in client.zrange(verification_key(11), 0, -1)]
    assert members and all(token.secret not in member for member in members)
    assert tokens.spend(token) and not tokens.spend(token)
