"""Verified email addresses: the mail that proves an address reaches its account's owner,
sent at registration and again on request, and the token it carries, spent to verify."""

from typing import Any

from db import repositories as repo
from db.emails import canonical_email
from db.engine import Database
from service.audit import audit
from service.errors import InvalidVerificationToken
from service.mail import Mailer, Outbox
from service.services.attempts import Attempts, MailRequest
from sessions.verifications import VerificationToken, VerificationTokens

VERIFICATION_SUBJECT = "Verify your email address"
VERIFIED = "Email address verified"


class EmailVerificationService:
    def __init__(
        self,
        *,
        database: Database,
        tokens: VerificationTokens,
        mailer: Mailer,
        outbox: Outbox,
        url: str,
    ) -> None:
        self._database = database
        self._tokens = tokens
        self._mailer = mailer
        self._outbox = outbox
        self._url = url

    def send(self, *, user_id: int, email: str) -> None:
        """Queue a verification mail to a new account: off the request path, like every
        mail, so that registering is answered as fast whatever the mail server does."""
        self._outbox.submit(lambda: self._send(user_id, email))

    def request(self, *, email: str, attempts: Attempts) -> None:
        """Queue the mail again, counted against the address's limits. Whether the account
        exists, and is still unverified, is decided off the request path, so the answer
        (and its timing) is the same for every address."""
        attempts.verification_mail(
            MailRequest(canonical_email(email)),
            lambda: self._outbox.submit(lambda: self._send_again(email)),
        )

    def verify(self, *, token: str) -> dict[str, Any]:
        """Spend the token (and every other of its account) and mark the address verified;
        InvalidVerificationToken (400) for an unknown, spent, expired or malformed one,
        and nothing changes."""
        parsed = VerificationToken.parse(token)
        if parsed is None or not self._tokens.spend(parsed):
            raise InvalidVerificationToken()
        with self._database.session() as db:
            if not repo.mark_email_verified(db, user_id=parsed.user_id):
                raise InvalidVerificationToken()  # the account went since the mail
        audit.info("email_verified", user_id=parsed.user_id, via="verification_mail")
        return {"detail": VERIFIED, "email_verified": True}

    def _send_again(self, email: str) -> None:
        with self._database.session() as db:
            user = repo.get_user_by_email(db, email=email)
        if user is None or user.email_verified_at is not None:
            audit.info(
                "email_verification_requested",
                known_account=user is not None,
                already_verified=user is not None,
                user_id=user.id if user else None,
            )
            return
        self._send(user.id, user.email)

    def _send(self, user_id: int, email: str) -> None:
        token = self._tokens.issue(user_id)
        audit.info("email_verification_requested", known_account=True, user_id=user_id)
        self._mailer.send(
            to=email, subject=VERIFICATION_SUBJECT, body=self._body(str(token)),
            purpose="email_verification",
        )  # fmt: skip

    def _body(self, token: str) -> str:
        hours, seconds = divmod(self._tokens.ttl_seconds, 3600)
        valid = (
            f"{hours} hours"
            if hours and not seconds
            else f"{self._tokens.ttl_seconds // 60} minutes"
        )
        lines = [
            "An account of the tasks service was created with this email address.",
            "",
            f"To confirm that the address is yours, use this token (valid for {valid},",
            "usable once; any earlier one stays valid until then):",
            "",
            f"    {token}",
            "",
        ]
        if self._url:
            lines += ["Or open this link:", "", f"    {self._url.format(token=token)}", ""]
        lines += ["If it was not you, ignore this message: nothing else happens."]
        return "\n".join(lines)
