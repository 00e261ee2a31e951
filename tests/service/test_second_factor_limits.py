"""Second-factor codes are limited per account, from every client together
(MFA_RATE_LIMIT): the login's second half and every account route that checks a code
count alike. And an mfa_token lives MFA_TOKEN_TTL_SECONDS."""

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.api import PASSWORD, Api
from tests.support.live_server import LiveServer, StartServer
from tests.support.second_factor import enrolled, first_half, login_with

MFA_LIMIT = 4
TOKEN_TTL = 1
METRICS_TOKEN = "metrics-token-for-the-second-factor"


@pytest.fixture(scope="module")
def limited(start_server: StartServer) -> Iterator[LiveServer]:
    server = start_server(
        workers=2,
        MFA_RATE_LIMIT=f"{MFA_LIMIT}/15minutes",
        MFA_TOKEN_TTL_SECONDS=str(TOKEN_TTL),
        METRICS_TOKEN=METRICS_TOKEN,
    )
    yield server
    # Now rather than at the session's end: its PostgreSQL connections are shared.
    server.stop()


def _post_from(server: LiveServer, ip: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A request from one loopback address: one client, as the server sees it."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(ip, 0)
    )
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_codes_are_limited_per_account_across_clients(limited: LiveServer) -> None:
    api = Api(limited.url)
    user = enrolled(api)  # the confirmation's code was the first
    credentials = {"email": user.email, "password": PASSWORD}
    statuses = []
    for n in range(MFA_LIMIT - 1):
        ip = f"127.0.8.{n + 1}"
        status, challenge = _post_from(limited, ip, "/login", credentials)
        assert status == 403, challenge
        body = {"mfa_token": challenge["mfa_token"], "code": user.app.wrong_code()}
        statuses.append(_post_from(limited, ip, "/login/mfa", body)[0])
    assert statuses == [401] * (MFA_LIMIT - 1)
    # From yet another client, the right code: the account's limit is spent.
    status, challenge = _post_from(limited, "127.0.8.20", "/login", credentials)
    body = {"mfa_token": challenge["mfa_token"], "code": user.app.code()}
    refused = api.post("/login/mfa", json=body)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit"] == str(MFA_LIMIT)
    # The account routes that take a code are refused too, before any check.
    off = api.request(
        "DELETE",
        "/me/mfa/totp",
        json={"password": PASSWORD, "code": user.recovery_codes[0]},
        headers=user.tokens.headers,
    )
    assert off.status_code == 429
    # Another account is not concerned.
    other = enrolled(api)
    assert login_with(api, other.email, other.app.code()).status_code == 200


def test_codes_checked_by_account_routes_count_as_well(limited: LiveServer) -> None:
    api = Api(limited.url)
    user = enrolled(api)
    change = {"current_password": PASSWORD, "new_password": "a changed passphrase here"}
    wrong = [
        api.post(
            "/me/password",
            json={**change, "code": user.app.wrong_code()},
            headers=user.tokens.headers,
        ).status_code
        for _ in range(MFA_LIMIT - 1)
    ]
    assert wrong == [403] * (MFA_LIMIT - 1)
    assert login_with(api, user.email, user.app.code()).status_code == 429


def test_an_expired_mfa_token_is_refused_and_spends_no_code(limited: LiveServer) -> None:
    api = Api(limited.url)
    user = enrolled(api)
    token = first_half(api, user.email)["mfa_token"]
    # Nothing tells a live token from an expired one without using it: wait out its life.
    time.sleep(TOKEN_TTL + 0.5)
    code = user.app.code()
    expired = api.post("/login/mfa", json={"mfa_token": token, "code": code})
    assert expired.status_code == 401
    assert login_with(api, user.email, code).status_code == 200


def test_second_factor_outcomes_are_counted(limited: LiveServer) -> None:
    api = Api(limited.url)
    user = enrolled(api)  # 1 of MFA_LIMIT
    assert login_with(api, user.email, user.app.code()).status_code == 200
    assert login_with(api, user.email, user.app.last_code).status_code == 401  # a replay
    assert login_with(api, user.email, user.app.wrong_code()).status_code == 401
    # Refused before the code is looked at, whatever it is.
    assert login_with(api, user.email, user.app.wrong_code()).status_code == 429
    other = enrolled(api)
    assert login_with(api, other.email, other.recovery_codes[0]).status_code == 200
    metrics = api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    for labels in (
        'method="totp",outcome="success"',
        'method="totp",outcome="replay"',
        'method="totp",outcome="failure"',
        'method="recovery_code",outcome="success"',
        'method="totp",outcome="limited"',
    ):
        assert f"mfa_attempts_total{{{labels}}}" in metrics, labels
    assert 'rate_limit_rejections_total{limit="mfa"}' in metrics
    assert 'login_attempts_total{outcome="mfa_required"}' in metrics
