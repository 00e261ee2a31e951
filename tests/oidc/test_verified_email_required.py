"""REQUIRE_VERIFIED_EMAIL on the provider's path, against a real provider and a real SMTP
server: an account whose own address was never verified gets no session through a linked
identity either, until the address is verified; an account a provider made (for an
address the provider vouches for) is verified from the start."""

import re
from pathlib import Path

import pytest

from service.services.verification import VERIFICATION_SUBJECT
from tests.support.api import PASSWORD
from tests.support.live_server import StartServer
from tests.support.oidc_service import Site, account, start_site
from tests.support.smtp_server import SmtpServer

HOLDER = account("holder")  # registers with a password, links an identity, never verifies
FRESH = account("fresh")  # first seen through the provider
ACCOUNTS = [HOLDER, FRESH]
TOKEN = re.compile(r"^ {4}([0-9]+\.[A-Za-z0-9_-]{43,})\r?$", re.MULTILINE)


def _site(start_server: StartServer, tmp: Path, smtp: SmtpServer, **env: str) -> Site:
    return start_site(
        start_server,
        tmp,
        ACCOUNTS,
        names=("corp",),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        MAIL_FROM="Tasks <no-reply@example.com>",
        **env,
    )


def test_an_unverified_account_gets_no_session_through_its_identity(
    start_server: StartServer, tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> None:
    # Linked while the rule was off: the account has a password and an identity at corp.
    lenient = _site(start_server, tmp_path_factory.mktemp("lenient"), smtp)
    try:
        api = lenient.api
        holder = api.login(api.register(HOLDER.email))
        assert lenient.link("corp", HOLDER, holder) == {"linked": "corp"}
        holder_id = lenient.me(holder)["id"]
    finally:
        lenient.stop()

    strict = _site(
        start_server, tmp_path_factory.mktemp("strict"), smtp, REQUIRE_VERIFIED_EMAIL="true"
    )
    try:
        assert strict.sign_in("corp", HOLDER) == {"error": "email_unverified"}
        password = strict.api.post("/login", json={"email": HOLDER.email, "password": PASSWORD})
        assert (password.status_code, password.json()["code"]) == (403, "email_unverified")

        fresh = strict.me(strict.session("corp", FRESH))
        assert fresh["email"] == FRESH.email and fresh["email_verified"] is True

        # The address verified with the mail its registration sent: the identity signs in.
        mail = smtp.wait_for(HOLDER.email, subject=VERIFICATION_SUBJECT)[0]
        token = TOKEN.search(mail.get_content())
        assert token is not None, mail.get_content()
        verified = strict.api.post("/email/verify", json={"token": token[1]})
        assert verified.status_code == 200, verified.text
        assert strict.me(strict.session("corp", HOLDER))["id"] == holder_id
    finally:
        strict.stop()
