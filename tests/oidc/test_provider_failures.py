"""A provider that is down, hung or rotating its keys, under a running service: a sign-in
then is answered `provider_error` within the provider timeout (1 s here), never a 500 and
never a hang, and works again by itself once the provider is back."""

import time
from collections.abc import Iterator

import pytest

from tests.support.live_server import StartServer
from tests.support.oidc_service import Site, account, start_site

DOWN, HUNG, ROTATED = account("down"), account("hung"), account("rotated")
TIMEOUT_SECONDS = 1.0
# The timeout, plus what a loaded test machine may add.
BOUND_SECONDS = TIMEOUT_SECONDS + 2.0


@pytest.fixture(scope="module")
def site(start_server: StartServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    running = start_site(
        start_server, tmp_path_factory.mktemp("oidc-faults"), [DOWN, HUNG, ROTATED]
    )
    yield running
    # Stopped now rather than with the session: PostgreSQL's connections are shared.
    running.server.stop()
    for provider in running.providers.values():
        provider.stop()


def timed(work: object) -> tuple[object, float]:
    start = time.monotonic()
    result = work() if callable(work) else work
    return result, time.monotonic() - start


def signs_in_again(site: Site, who: object, within: float = 15) -> None:
    """The provider is back: a sign-in succeeds again, once the provider's breaker lets a
    trial call through (after about the timeout)."""
    deadline = time.monotonic() + within
    while True:
        # While the breaker is open, even the redirect goes straight back to the front end
        # (with provider_error), where a browser could not follow it here.
        start = site.api.get("/oidc/corp/authorize", allow_redirects=False)
        if not start.headers["location"].startswith(site.providers["corp"].issuer):
            assert start.headers["location"].endswith("error=provider_error")
            assert time.monotonic() < deadline, "the redirect never reached the provider"
            time.sleep(0.2)
            continue
        landed = site.sign_in("corp", who)  # type: ignore[arg-type]
        if set(landed) == {"login_code"}:
            assert site.exchange(landed["login_code"]).status_code == 200
            return
        assert landed == {"error": "provider_error"}, landed
        assert time.monotonic() < deadline, "no sign-in since the provider came back"
        time.sleep(0.2)


def test_a_provider_down_is_provider_error_and_then_recovers(site: Site) -> None:
    provider = site.providers["corp"]
    api = site.api
    tokens = api.new_user()
    with provider.down():
        # Linking answers the caller itself: a 503 that says which dependency.
        linking = api.post("/me/identities/corp", headers=tokens.headers)
        assert linking.status_code == 503
        assert linking.json()["code"] == "provider_error" and "retry-after" in linking.headers
        # Nothing cached yet: the redirect itself needs the provider's metadata.
        response, seconds = timed(lambda: api.get("/oidc/corp/authorize", allow_redirects=False))
        assert response.status_code == 302  # type: ignore[attr-defined]
        location = response.headers["location"]  # type: ignore[attr-defined]
        assert location.endswith("error=provider_error"), location
        assert seconds < BOUND_SECONDS
    signs_in_again(site, DOWN)

    # Down between the provider's redirect back and the code's exchange.
    browser, callback = site.to_callback("corp", DOWN)
    with provider.down():
        landed, seconds = timed(lambda: site.land(browser, callback))
        assert landed == {"error": "provider_error"}
        assert seconds < BOUND_SECONDS
    signs_in_again(site, DOWN)
    logs = site.server.logs()
    assert '"reason":"provider_error"' in logs and '"unhandled_error"' not in logs
    assert site.metric("oidc_logins_total", 'provider="corp",outcome="provider_error"') >= 2


def test_a_hung_provider_is_provider_error_within_the_timeout(site: Site) -> None:
    provider = site.providers["corp"]
    flows = [site.to_callback("corp", HUNG) for _ in range(3)]
    with provider.hung():
        answers = [timed(lambda flow=flow: site.land(*flow)) for flow in flows]
    assert [landed for landed, _ in answers] == [{"error": "provider_error"}] * 3
    # Each of the first two waits out the timeout; they open the provider's breaker, so the
    # third is answered at once instead of holding a request thread too.
    assert all(seconds < BOUND_SECONDS for _, seconds in answers)
    assert answers[2][1] < TIMEOUT_SECONDS / 2
    signs_in_again(site, HUNG)


def test_a_rotated_signing_key_is_fetched_and_the_sign_in_works(site: Site) -> None:
    provider = site.providers["corp"]
    site.session("corp", ROTATED)
    old_kid = provider.kid
    provider.restart(rotate_keys=True)
    assert provider.kid != old_kid
    # A new browser: the provider forgot its sessions with the restart.
    signs_in_again(site, ROTATED)
    logs = site.server.logs()
    assert '"oidc_keys_refreshed"' in logs and provider.kid in logs
