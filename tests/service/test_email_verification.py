"""Verified email addresses, end to end through a real SMTP server on loopback: the mail
every registration sends, verifying with its token, asking for it again, and the login
rule REQUIRE_VERIFIED_EMAIL."""

import http.client
import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from service.services.passwords import RESET_SUBJECT
from service.services.verification import VERIFICATION_SUBJECT
from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import LiveServer, StartServer
from tests.support.smtp_server import SmtpServer

VERIFY_URL = "https://app.example.com/verify?token={token}"
TOKEN = re.compile(r"^ {4}([0-9]+\.[A-Za-z0-9_-]{43,})\r?$", re.MULTILINE)
UNKNOWN = {"detail": "The verification token is unknown, used or expired"}
RESENT = {
    "detail": "If an unverified account exists for this email, a verification message is on its way"
}


def _mail_env(smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": "none",
        "MAIL_FROM": "Tasks <no-reply@example.com>",
        "EMAIL_VERIFICATION_URL": VERIFY_URL,
        "EMAIL_VERIFICATION_RATE_LIMIT": "1000/hour",
        "PASSWORD_RESET_RATE_LIMIT": "1000/hour",
        **extra,
    }


@pytest.fixture(scope="module")
def mailing(start_server: StartServer, smtp: SmtpServer) -> Iterator[LiveServer]:
    server = start_server(**_mail_env(smtp))
    yield server
    # Stopped now rather than with the session: PostgreSQL's connections are shared.
    server.stop()


@pytest.fixture
def own_server(start_server: StartServer, smtp: SmtpServer) -> Iterator[StartServer]:
    """A server of the test's own, with the mail settings and `env`, stopped after it."""
    started: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        started.append(start_server(**_mail_env(smtp, **env)))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _tokens(smtp: SmtpServer, email: str, count: int = 1) -> list[str]:
    """The tokens of the first `count` verification mails to `email`, in order."""
    messages = smtp.wait_for(email, count, subject=VERIFICATION_SUBJECT)
    found = [TOKEN.search(message.get_content()) for message in messages[:count]]
    assert all(found), [m.get_content() for m in messages]
    return [match[1] for match in found if match]


def _verify(api: Api, token: str) -> tuple[int, object]:
    response = api.post("/email/verify", json={"token": token})
    return response.status_code, response.json()


def _verified(api: Api, email: str, password: str = PASSWORD) -> bool:
    me = api.get("/me", headers=api.login(email, password).headers)
    assert me.status_code == 200
    return bool(me.json()["email_verified"])


def test_registration_mails_a_token_that_verifies_the_address(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    email = api.register()
    (message,) = smtp.wait_for(email, subject=VERIFICATION_SUBJECT)
    assert message["From"] == "Tasks <no-reply@example.com>"
    (token,) = _tokens(smtp, email)
    assert len(token.split(".")[1]) >= 43  # 256 random bits, base64url
    assert VERIFY_URL.format(token=token) in message.get_content()
    assert not _verified(api, email)

    assert _verify(api, token) == (
        200,
        {"detail": "Email address verified", "email_verified": True},
    )
    assert _verified(api, email)
    # Single use: the same token again is the one 400, and changes nothing.
    assert _verify(api, token) == (400, UNKNOWN)
    assert _verified(api, email)
    logs = mailing.logs()
    assert token not in logs and token.split(".")[1] not in logs
    assert '"email_verified"' in logs


def test_mails_coexist_until_one_is_used(mailing: LiveServer, smtp: SmtpServer) -> None:
    api = Api(mailing.url)
    email = api.register()
    _tokens(smtp, email)
    # Someone else asks for more mails: the owner's first link still works.
    assert api.post("/email/verify/resend", json={"email": email}).status_code == 202
    older, newer = _tokens(smtp, email, count=2)
    assert older != newer
    assert _verify(api, older)[0] == 200
    # The first one used spends them all.
    assert _verify(api, newer) == (400, UNKNOWN)


def test_a_resend_is_answered_alike_and_mails_only_an_unverified_account(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    verified, unverified, unknown = api.register(), api.register(), unique_email("nobody")
    assert _verify(api, _tokens(smtp, verified)[0])[0] == 200
    _tokens(smtp, unverified)
    for email in (unknown, verified, unverified):
        response = api.post("/email/verify/resend", json={"email": email})
        assert (response.status_code, response.json()) == (202, RESENT)
    # The outbox sends in order: once the last one's mail is here, the others were decided.
    _tokens(smtp, unverified, count=2)
    assert smtp.messages_to(unknown) == []
    assert len(smtp.messages_to(verified, subject=VERIFICATION_SUBJECT)) == 1
    assert '"already_verified":true' in mailing.logs()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "1.short",
        "0." + "A" * 43,
        "1." + "A" * 43,  # the right shape, but no mail carried it
        "1." + "A" * 43 + "\ud800",  # a lone surrogate: malformed like any other shape
        "1." + "A" * 300,  # longer than any token issued
        "1.\x00" + "A" * 43,
    ],
)
def test_malformed_or_unknown_tokens_are_one_400(mailing: LiveServer, token: str) -> None:
    assert _verify(Api(mailing.url), token) == (400, UNKNOWN)


def test_a_token_of_another_account_verifies_nothing(mailing: LiveServer, smtp: SmtpServer) -> None:
    api = Api(mailing.url)
    mine, theirs = api.register(), api.register()
    (token,) = _tokens(smtp, theirs)
    my_id = api.get("/me", headers=api.login(mine).headers).json()["id"]
    assert _verify(api, f"{my_id}.{token.split('.')[1]}") == (400, UNKNOWN)
    assert not _verified(api, mine)
    assert _verify(api, token)[0] == 200


def test_an_expired_token_changes_nothing(own_server: StartServer, smtp: SmtpServer) -> None:
    api = Api(own_server(EMAIL_VERIFICATION_TTL_SECONDS="1").url)
    email = api.register()
    (token,) = _tokens(smtp, email)
    time.sleep(1.5)
    assert _verify(api, token) == (400, UNKNOWN)
    assert not _verified(api, email)


def test_a_reset_by_mail_verifies_the_address(mailing: LiveServer, smtp: SmtpServer) -> None:
    api = Api(mailing.url)
    email = api.register()
    assert api.post("/password/forgot", json={"email": email}).status_code == 202
    (message,) = smtp.wait_for(email, subject=RESET_SUBJECT)
    match = TOKEN.search(message.get_content())
    assert match
    new_password = "a brand new passphrase"
    reset = api.post("/password/reset", json={"token": match[1], "new_password": new_password})
    assert reset.status_code == 200
    assert _verified(api, email, new_password)


def _resend_from(ip: str, url: str, email: str) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(ip, 0)
    )
    try:
        body = json.dumps({"email": email})
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/email/verify/resend", body, headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_resends_are_limited_per_address_and_per_client(own_server: StartServer) -> None:
    url = own_server(EMAIL_VERIFICATION_RATE_LIMIT="2/hour").url
    email = unique_email()
    # One address from three clients: its own limit.
    assert [_resend_from(f"127.0.2.{n}", url, email) for n in (1, 2, 3)] == [202, 202, 429]
    # One client, three addresses: the client's limit.
    statuses = [_resend_from("127.0.2.9", url, unique_email()) for _ in range(3)]
    assert statuses == [202, 202, 429]


def test_required_verification_refuses_only_the_owner_until_verified(
    own_server: StartServer, smtp: SmtpServer
) -> None:
    api = Api(own_server(REQUIRE_VERIFIED_EMAIL="true").url)
    email = api.register()
    refused = api.post("/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 403
    assert set(refused.json()) == {"detail", "code"}
    assert refused.json()["code"] == "email_unverified"
    # Anyone without the password learns nothing: the usual 401, as for an unknown address.
    wrong = api.post("/login", json={"email": email, "password": "not the password"})
    unknown = api.post("/login", json={"email": unique_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()

    assert _verify(api, _tokens(smtp, email)[0])[0] == 200
    assert api.login(email).access_token
