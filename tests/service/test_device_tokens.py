"""Device tokens: guesses spread over many clients lock an account for everyone except the
clients its owner has logged in from before (by device token, or by address)."""

import http.client
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.services.passwords import RESET_SUBJECT
from sessions.devices import DeviceTokens
from tests.support.api import PASSWORD, Api
from tests.support.live_server import TEST_JWT_SECRET, LiveServer, StartServer
from tests.support.smtp_server import SmtpServer

ACCOUNT_LIMIT = 50
DEVICE_LIMIT = 3
TOKEN = re.compile(r"^ {4}([0-9]+\.[A-Za-z0-9_-]{43,})\r?$", re.MULTILINE)


@pytest.fixture(scope="module")
def guarded(start_server: StartServer, smtp: SmtpServer) -> LiveServer:
    return start_server(
        workers=2,
        LOGIN_RATE_LIMIT="10/minute",
        LOGIN_ACCOUNT_RATE_LIMIT=f"{ACCOUNT_LIMIT}/hour",
        LOGIN_DEVICE_RATE_LIMIT=f"{DEVICE_LIMIT}/15minutes",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        PASSWORD_RESET_RATE_LIMIT="1000/hour",
    )


class Client:
    """Requests from one loopback address: one client, as the server sees it."""

    def __init__(self, server: LiveServer, ip: str) -> None:
        self.url, self.ip = server.url, ip

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(self.ip, 0)
        )
        try:
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return response.status, answer
        finally:
            connection.close()

    def login(self, email: str, password: str = PASSWORD, device: str | None = None) -> int:
        return self.login_answer(email, password, device)[0]

    def login_answer(
        self, email: str, password: str = PASSWORD, device: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = {"email": email, "password": password}
        if device is not None:
            body["device_token"] = device
        return self.post("/login", body)


def _device_of(server: LiveServer, email: str, ip: str = "127.0.0.1") -> str:
    status, body = Client(server, ip).login_answer(email)
    assert status == 200, body
    token: str = body["device_token"]
    return token


def _lock(server: LiveServer, email: str, first_ip: int = 2) -> None:
    """An attacker's guesses for `email`, each from another client address, until the
    account-wide limit refuses: at most ACCOUNT_LIMIT of them (the owner's first sign-in
    from an address the account did not know yet counted as one as well)."""
    guesses = []
    for n in range(ACCOUNT_LIMIT + 1):
        address = f"127.0.{(first_ip + n) // 250}.{(first_ip + n) % 250 + 1}"
        guesses.append(Client(server, address).login(email, f"wrong guess {n}"))
        if guesses[-1] != 401:
            break
    assert guesses[-1] == 429
    assert set(guesses[:-1]) == {401} and len(guesses) >= ACCOUNT_LIMIT - 2
    assert Client(server, "127.0.3.1").login(email, "one guess more") == 429


def test_the_owner_with_a_device_token_logs_in_while_the_account_is_locked(
    guarded: LiveServer,
) -> None:
    api = Api(guarded.url)
    email = api.register()
    device = _device_of(guarded, email)
    _lock(guarded, email)
    # Locked for everyone else: the right password from a client without a device token.
    status, refused = Client(guarded, "127.0.3.2").login_answer(email)
    assert status == 429 and "detail" in refused
    # The owner's client, wherever it is now, gets in; the token is renewed.
    status, body = Client(guarded, "127.0.3.3").login_answer(email, device=device)
    assert status == 200, body
    renewed = body["device_token"]
    assert renewed.split(".")[:2] == device.split(".")[:2]  # the same account and device
    assert api.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"}).ok
    # A wrong password with the device token is a plain 401, not the account's 429.
    assert Client(guarded, "127.0.3.4").login(email, "a typo in it", device=renewed) == 401


def test_a_device_token_of_another_account_lifts_nothing(guarded: LiveServer) -> None:
    api = Api(guarded.url)
    victim, attacker = api.register(), api.register()
    attackers_device = _device_of(guarded, attacker)
    _lock(guarded, victim, first_ip=260)
    client = Client(guarded, "127.0.3.5")
    assert client.login(victim, "guess with a device", device=attackers_device) == 429
    assert client.login(victim, device=attackers_device) == 429
    # The attacker's own account is untouched by it.
    assert client.login(attacker, device=attackers_device) == 200


def _forged(device: str) -> list[str]:
    user_id, device_id, expires, mac = device.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    later = str(int(expires) + 86_400)
    return [
        f"{user_id}.{device_id}.{expires}.{flipped}",  # another signature
        f"{user_id}.{device_id}.{later}.{mac}",  # a longer life than signed
        f"{int(user_id) + 1}.{device_id}.{expires}.{mac}",  # another account's id
        "not a device token",
        "",
    ]


def _expired(device: str, email: str) -> str:
    # Signed with the server's secret, as the server would have, long ago.
    user_id = int(device.split(".")[0])
    past = DeviceTokens(secret=TEST_JWT_SECRET, ttl_seconds=60, clock=lambda: time.time() - 3600)
    return str(past.issue(user_id=user_id, email=email))


def test_forged_and_expired_device_tokens_are_ignored(guarded: LiveServer) -> None:
    api = Api(guarded.url)
    email = api.register()
    device = _device_of(guarded, email)
    expired = _expired(device, email)
    # Not an error: a login that sends one is an ordinary login, and gets a new device.
    for token in [*_forged(device), expired]:
        status, body = Client(guarded, "127.0.3.6").login_answer(email, device=token)
        assert status == 200, (token, body)
        assert body["device_token"].split(".")[1] != device.split(".")[1]
    _lock(guarded, email, first_ip=520)
    for token in [*_forged(device), expired]:
        assert Client(guarded, "127.0.3.7").login(email, device=token) == 429, token
    assert Client(guarded, "127.0.3.7").login(email, device=device) == 200


def test_a_device_has_its_own_limit_away_from_known_addresses(guarded: LiveServer) -> None:
    api = Api(guarded.url)
    email = api.register()
    device = _device_of(guarded, email)
    other_device = _device_of(guarded, email, ip="127.0.3.8")
    # From an address the account does not know, the device's limit counts the attempt;
    # once signed in from there, the address is known and the device's limit stays out.
    for _ in range(DEVICE_LIMIT + 2):
        assert Client(guarded, "127.0.4.1").login(email, device=device) == 200
    statuses = [
        Client(guarded, f"127.0.4.{20 + n}").login(email, "wrong" * 2, device=device)
        for n in range(DEVICE_LIMIT)
    ]
    assert statuses == [401] * (DEVICE_LIMIT - 1) + [429]
    # The device is refused even the right password from a new address; the owner's
    # other device is not, nor the device from an address it signed in from.
    assert Client(guarded, "127.0.4.30").login(email, device=device) == 429
    assert Client(guarded, "127.0.4.31").login(email, device=other_device) == 200
    assert Client(guarded, "127.0.4.1").login(email, device=device) == 200


def test_a_known_address_without_a_device_token_gets_in_while_the_account_is_locked(
    guarded: LiveServer,
) -> None:
    api = Api(guarded.url)
    email = api.register()
    assert Client(guarded, "127.0.5.1").login(email) == 200  # the owner, no device token
    _lock(guarded, email, first_ip=1560)
    # A distributed guesser is throttled: a new address is refused, right password or not.
    assert Client(guarded, "127.0.5.2").login(email) == 429
    assert Client(guarded, "127.0.5.2").login(email, "another guess") == 429
    # The owner's address is not: its own per-address limit is all that applies.
    assert Client(guarded, "127.0.5.1").login(email) == 200
    assert Client(guarded, "127.0.5.1").login(email, "owner typo here") == 401


def test_a_password_reset_lifts_the_lockout(guarded: LiveServer, smtp: SmtpServer) -> None:
    api = Api(guarded.url)
    email = api.register()
    _lock(guarded, email, first_ip=780)
    assert Client(guarded, "127.0.3.9").login(email) == 429
    assert api.post("/password/forgot", json={"email": email}).status_code == 202
    match = TOKEN.search(smtp.wait_for(email, subject=RESET_SUBJECT)[0].get_content())
    assert match
    new_password = "a fresh start of a passphrase"
    reset = api.post("/password/reset", json={"token": match[1], "new_password": new_password})
    assert reset.status_code == 200, reset.text
    # From a client with no device token: the account's failures are forgotten.
    assert Client(guarded, "127.0.3.10").login(email, new_password) == 200


def test_a_device_locked_by_failed_logins_is_free_after_a_reset(
    guarded: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(guarded.url)
    email = api.register()
    device = _device_of(guarded, email)
    # Wrong passwords with the device token, from addresses the account does not know,
    # until the device's own limit refuses it even the right password.
    statuses = [
        Client(guarded, f"127.0.6.{10 + n}").login(email, "wrong" * 2, device=device)
        for n in range(DEVICE_LIMIT + 1)
    ]
    assert statuses == [401] * DEVICE_LIMIT + [429]
    assert Client(guarded, "127.0.6.20").login(email, device=device) == 429
    assert api.post("/password/forgot", json={"email": email}).status_code == 202
    match = TOKEN.search(smtp.wait_for(email, subject=RESET_SUBJECT)[0].get_content())
    assert match
    new_password = "a fresh start for the device"
    reset = api.post("/password/reset", json={"token": match[1], "new_password": new_password})
    assert reset.status_code == 200, reset.text
    # The owner's device, from an address still unknown: its failures are forgotten.
    assert Client(guarded, "127.0.6.21").login(email, new_password, device=device) == 200


def test_deleting_the_account_ends_its_device_tokens(guarded: LiveServer) -> None:
    api = Api(guarded.url)
    email = api.register()
    device = _device_of(guarded, email)
    tokens = api.login(email)
    deleted = api.delete("/me", json={"password": PASSWORD}, headers=tokens.headers)
    assert deleted.status_code == 200
    api.register(email)  # the address again: a new account
    _lock(guarded, email, first_ip=1040)
    assert Client(guarded, "127.0.3.11").login(email, device=device) == 429


def test_a_password_change_keeps_device_tokens(guarded: LiveServer) -> None:
    api = Api(guarded.url)
    email = api.register()
    device = _device_of(guarded, email)
    tokens = api.login(email)
    new_password = "a changed passphrase here"
    changed = api.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=tokens.headers,
    )
    assert changed.status_code == 200
    _lock(guarded, email, first_ip=1300)
    assert Client(guarded, "127.0.3.12").login(email, new_password, device=device) == 200


def test_device_tokens_never_reach_the_logs(guarded: LiveServer) -> None:
    email = Api(guarded.url).register()
    device = _device_of(guarded, email)
    assert Client(guarded, "127.0.3.13").login(email, device=device) == 200
    assert device.split(".")[3] not in guarded.logs()
