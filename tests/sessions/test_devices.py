"""Device tokens on their own: bound to one account, signed, expiring."""

from sessions.devices import DeviceTokens
from tests.support.clock import FakeClock

SECRET = "a-secret-of-the-service-" + "x" * 20
EMAIL = "ada@example.com"


def _tokens(clock: FakeClock, secret: str = SECRET) -> DeviceTokens:
    return DeviceTokens(secret=secret, ttl_seconds=3600, clock=clock)


def test_a_token_names_its_device_for_its_account_only() -> None:
    devices = _tokens(FakeClock())
    token = str(devices.issue(user_id=42, email=EMAIL))
    device = devices.device_of(token, user_id=42, email=EMAIL)
    assert device is not None and device in token
    assert devices.device_of(token, user_id=43, email=EMAIL) is None
    # Bound to the account's canonical email too, which the token does not carry.
    assert devices.device_of(token, user_id=42, email="eve@example.com") is None


def test_a_renewed_token_keeps_the_device_and_lives_longer() -> None:
    clock = FakeClock()
    devices = _tokens(clock)
    first = devices.issue(user_id=7, email=EMAIL)
    clock.advance(1800)
    renewed = devices.issue(user_id=7, email=EMAIL, device_id=first.device_id)
    assert renewed.device_id == first.device_id
    assert renewed.expires_at == first.expires_at + 1800
    clock.advance(1800)
    assert devices.device_of(str(first), user_id=7, email=EMAIL) is None  # expired
    assert devices.device_of(str(renewed), user_id=7, email=EMAIL) == first.device_id


def test_new_devices_are_distinct() -> None:
    devices = _tokens(FakeClock())
    ids = {devices.issue(user_id=1, email=EMAIL).device_id for _ in range(50)}
    assert len(ids) == 50


def test_forged_tokens_are_refused() -> None:
    clock = FakeClock()
    devices = _tokens(clock)
    token = str(devices.issue(user_id=5, email=EMAIL))
    user_id, device_id, expires, mac = token.split(".")
    other_key = str(
        _tokens(clock, secret="another secret " + "y" * 20).issue(user_id=5, email=EMAIL)
    )
    forged = [
        f"{user_id}.{device_id}.{int(expires) + 10}.{mac}",
        f"{user_id}.{device_id[::-1]}.{expires}.{mac}",
        f"{user_id}.{device_id}.{expires}.{mac[::-1]}",
        other_key,
        token + "x",
        " " + token,
        "",
        "\ud800" + token,
    ]
    for candidate in forged:
        assert devices.device_of(candidate, user_id=5, email=EMAIL) is None, candidate
    assert devices.device_of(None, user_id=5, email=EMAIL) is None
