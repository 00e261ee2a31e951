"""Password reset by email, end to end through a real SMTP server on loopback."""

import http.client
import json
import re
import statistics
import time
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from service.services.passwords import RESET_SUBJECT
from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import LiveServer, StartServer
from tests.support.smtp_server import SmtpServer

NEW_PASSWORD = "a brand new passphrase"
RESET_URL = "https://app.example.com/reset?token={token}"
TOKEN = re.compile(r"^ {4}([0-9]+\.[A-Za-z0-9_-]{43,})\r?$", re.MULTILINE)


def _mail_env(smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": "none",
        "MAIL_FROM": "Tasks <no-reply@example.com>",
        "PASSWORD_RESET_URL": RESET_URL,
        "PASSWORD_RESET_RATE_LIMIT": "1000/hour",
        **extra,
    }


@pytest.fixture(scope="module")
def mailing(start_server: StartServer, smtp: SmtpServer) -> LiveServer:
    return start_server(workers=2, **_mail_env(smtp))


def _forgot(api: Api, email: str) -> int:
    response = api.post("/password/forgot", json={"email": email})
    if response.status_code == 202:
        assert response.json() == {
            "detail": "If an account exists for this email, a reset message is on its way"
        }
    return response.status_code


def _token_of(message: object) -> str:
    body = message.get_content()  # type: ignore[attr-defined]
    match = TOKEN.search(body)
    assert match, body
    return match[1]


def _reset(api: Api, token: str, password: str = NEW_PASSWORD) -> int:
    return api.post("/password/reset", json={"token": token, "new_password": password}).status_code


def test_a_reset_by_email_ends_every_session(mailing: LiveServer, smtp: SmtpServer) -> None:
    api = Api(mailing.url)
    email = api.register()
    first, second = api.login(email), api.login(email)
    assert _forgot(api, email) == 202
    (message,) = smtp.wait_for(email, subject=RESET_SUBJECT)
    assert message["Subject"] == "Reset your password"
    assert message["From"] == "Tasks <no-reply@example.com>"
    token = _token_of(message)
    assert len(token.split(".")[1]) >= 43  # 256 random bits, base64url
    assert RESET_URL.format(token=token) in message.get_content()

    # A refused password does not spend the token.
    assert _reset(api, token, "12345678") == 422
    assert _reset(api, token) == 200
    for tokens in (first, second):
        assert api.get("/tasks", headers=tokens.headers).status_code == 401
    assert api.post("/login", json={"email": email, "password": PASSWORD}).status_code == 401
    assert api.login(email, NEW_PASSWORD).access_token
    assert _reset(api, token, "another fine passphrase") == 400  # single use
    logs = mailing.logs()
    assert token not in logs
    assert '"password_reset"' in logs and '"reason":"password_reset"' in logs


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    unknown, known = unique_email("nobody"), api.register()
    assert _forgot(api, unknown) == 202
    assert _forgot(api, known) == 202
    smtp.wait_for(
        known, subject=RESET_SUBJECT
    )  # mail goes out in order: the unknown one was handled first
    assert smtp.messages_to(unknown) == []
    assert '"known_account":false' in mailing.logs()


def _two_mails(api: Api, smtp: SmtpServer, email: str) -> tuple[str, str]:
    assert _forgot(api, email) == 202
    older = _token_of(smtp.wait_for(email, subject=RESET_SUBJECT)[0])
    assert _forgot(api, email) == 202
    newer = _token_of(smtp.wait_for(email, count=2, subject=RESET_SUBJECT)[1])
    assert older != newer
    return older, newer


@pytest.mark.parametrize("used", ["older", "newer"])
def test_two_mails_both_work_until_one_is_used(
    mailing: LiveServer, smtp: SmtpServer, used: str
) -> None:
    api = Api(mailing.url)
    email = api.register()
    older, newer = _two_mails(api, smtp, email)
    first, other = (older, newer) if used == "older" else (newer, older)
    # A refused password spends neither.
    assert _reset(api, first, "12345678") == 422
    assert _reset(api, other, "12345678") == 422
    assert _reset(api, first) == 200
    # Any successful reset spends every token of the account.
    assert _reset(api, other, "yet another passphrase") == 400
    assert _reset(api, first, "yet another passphrase") == 400
    assert api.login(email, NEW_PASSWORD).access_token


def test_a_reset_link_dies_with_a_password_change(mailing: LiveServer, smtp: SmtpServer) -> None:
    # A link mailed before the owner changed the password (say, after noticing someone
    # asked for it) must not let whoever reads that mail set another one.
    api = Api(mailing.url)
    email = api.register()
    tokens = api.login(email)
    older, newer = _two_mails(api, smtp, email)
    changed = api.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=tokens.headers,
    )
    assert changed.status_code == 200, changed.text
    for token in (older, newer):
        assert _reset(api, token, "the attacker's passphrase") == 400
    assert api.login(email, NEW_PASSWORD).access_token
    # A mail asked for after the change works as usual.
    assert _forgot(api, email) == 202
    assert _reset(api, _token_of(smtp.wait_for(email, count=3, subject=RESET_SUBJECT)[2])) == 200


def test_a_mail_triggered_by_someone_else_does_not_void_the_owners(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    email = api.register()
    assert _forgot(api, email) == 202
    owners = _token_of(smtp.wait_for(email, subject=RESET_SUBJECT)[0])
    # Someone else asks for mails for the address, again and again.
    for n in range(3):
        assert _forgot(Api(mailing.url), email) == 202
        smtp.wait_for(email, count=2 + n, subject=RESET_SUBJECT)
    assert _reset(api, owners) == 200


def test_a_token_of_another_account_does_not_reset_this_one(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    mine, theirs = api.register(), api.register()
    assert _forgot(api, theirs) == 202
    token = _token_of(smtp.wait_for(theirs, subject=RESET_SUBJECT)[0])
    my_id = api.get("/me", headers=api.login(mine).headers).json()["id"]
    forged = f"{my_id}.{token.split('.')[1]}"
    assert _reset(api, forged) == 400
    assert api.login(mine).access_token  # unchanged
    assert _reset(api, token) == 200


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "1.short",
        "\u00b2." + "A" * 43,  # "²" is a digit to str.isdigit(), not to int()
        "0." + "A" * 43,
        "1." + "A" * 43,  # the right shape, but no mail carried it
        "1." + "A" * 43 + "\ud800",  # a lone surrogate: malformed like any other shape
        "1.\x00" + "A" * 43,
        "-1." + "A" * 43,
        " 1." + "A" * 43,
    ],
)
def test_malformed_or_unknown_tokens_are_one_400_and_change_nothing(
    mailing: LiveServer, token: str
) -> None:
    response = Api(mailing.url).post(
        "/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "The reset token is unknown, used or expired"}


def test_a_reset_token_longer_than_any_issued_is_the_same_400(mailing: LiveServer) -> None:
    response = Api(mailing.url).post(
        "/password/reset", json={"token": "1." + "A" * 300, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "The reset token is unknown, used or expired"}


def test_an_expired_token_changes_nothing(start_server: StartServer, smtp: SmtpServer) -> None:
    api = Api(start_server(**_mail_env(smtp, PASSWORD_RESET_TTL_SECONDS="1")).url)
    email = api.register()
    assert _forgot(api, email) == 202
    token = _token_of(smtp.wait_for(email, subject=RESET_SUBJECT)[0])
    time.sleep(1.5)
    assert _reset(api, token) == 400
    assert api.login(email).access_token  # the old password still works


def test_a_known_address_is_answered_no_slower(mailing: LiveServer, smtp: SmtpServer) -> None:
    api = Api(mailing.url)
    known = api.register()

    def seconds(email: str) -> float:
        start = time.perf_counter()
        assert _forgot(api, email) == 202
        return time.perf_counter() - start

    # Interleaved, so the mail sent in the background weighs on both kinds alike.
    unknown = unique_email("nobody")
    samples = [(seconds(known), seconds(unknown)) for _ in range(15)]
    known_time = statistics.median(k for k, _ in samples)
    unknown_time = statistics.median(u for _, u in samples)
    # The answer is given before the account is even looked up; sending takes far longer.
    assert known_time < unknown_time * 1.5 + 0.005, (known_time, unknown_time)
    smtp.wait_for(known, count=15, subject=RESET_SUBJECT)


def _forgot_from(ip: str, url: str, email: str) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(ip, 0)
    )
    try:
        body = json.dumps({"email": email})
        connection.request("POST", "/password/forgot", body, {"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_requests_are_limited_per_address_and_per_client(
    start_server: StartServer, smtp: SmtpServer
) -> None:
    url = start_server(**_mail_env(smtp, PASSWORD_RESET_RATE_LIMIT="2/hour")).url
    email = unique_email()
    # One address from three clients: its own limit.
    assert [_forgot_from(f"127.0.1.{n}", url, email) for n in (1, 2, 3)] == [202, 202, 429]
    # One client, three addresses: the client's limit.
    statuses = [_forgot_from("127.0.1.9", url, unique_email()) for _ in range(3)]
    assert statuses == [202, 202, 429]


def _mail_lines(server: LiveServer, event: str) -> list[str]:
    """The log lines of `event` about the reset mail (registration mails a verification
    too), once there is one."""

    def found() -> list[str]:
        return [
            line
            for line in server.logs().splitlines()
            if f'"{event}"' in line and '"purpose":"password_reset"' in line
        ]

    deadline = time.monotonic() + 10
    while not found() and time.monotonic() < deadline:
        time.sleep(0.05)
    return found()


def test_without_smtp_development_logs_the_message(start_server: StartServer) -> None:
    server = start_server(APP_ENV="development")
    api = Api(server.url)
    email = api.register()
    assert _forgot(api, email) == 202
    (line,) = _mail_lines(server, "mail_not_sent")
    assert email in line and TOKEN.search(json.loads(line)["body"])


def test_without_smtp_production_logs_an_error_and_never_the_token(
    start_server: StartServer,
) -> None:
    server = start_server(APP_ENV="production", MFA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    api = Api(server.url)
    email = api.register()
    assert _forgot(api, email) == 202
    (line,) = _mail_lines(server, "mail_not_configured")
    assert '"level":"error"' in line
    assert "password-reset" not in server.logs() and "body" not in line


def test_a_failed_send_is_retried_and_logged_without_the_token(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    email = api.register()
    smtp.inbox.refuse = 1
    assert _forgot(api, email) == 202
    token = _token_of(smtp.wait_for(email, subject=RESET_SUBJECT)[0])
    logs = mailing.logs()
    assert '"mail_send_failed"' in logs and '"attempt":1' in logs
    assert token not in logs
    assert _reset(api, token) == 200


def test_a_reset_refuses_a_password_with_the_accounts_email_and_spends_nothing(
    mailing: LiveServer, smtp: SmtpServer
) -> None:
    api = Api(mailing.url)
    email = api.register()
    assert _forgot(api, email) == 202
    token = _token_of(smtp.wait_for(email, subject=RESET_SUBJECT)[0])
    local = email.split("@")[0]
    response = api.post(
        "/password/reset", json={"token": token, "new_password": f"{local.upper()} again"}
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "new_password"],
                "msg": "Password must not contain the account's email address or the part "
                "before its @",
                "type": "password_policy",
            }
        ]
    }
    assert api.login(email).access_token  # unchanged
    assert _reset(api, token) == 200  # and the token still works
