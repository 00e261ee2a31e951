"""Changing a password, and resetting a forgotten one by email."""

from typing import Any

from db import repositories as repo
from db.emails import canonical_email
from db.engine import Database
from service.audit import audit, sessions_revoked
from service.errors import InvalidResetToken, NotFound, PasswordRefused
from service.mail import Mailer, Outbox
from service.services.accounts import AccountService
from service.services.attempts import Attempts, MailRequest
from sessions.passwords import PasswordHasher
from sessions.policy import password_problem
from sessions.resets import ResetToken, ResetTokens
from sessions.store import SessionStore

RESET_SUBJECT = "Reset your password"


class PasswordService:
    def __init__(
        self,
        *,
        database: Database,
        accounts: AccountService,
        sessions: SessionStore,
        passwords: PasswordHasher,
        resets: ResetTokens,
        mailer: Mailer,
        outbox: Outbox,
        reset_url: str,
    ) -> None:
        self._database = database
        self._accounts = accounts
        self._sessions = sessions
        self._passwords = passwords
        self._resets = resets
        self._mailer = mailer
        self._outbox = outbox
        self._reset_url = reset_url

    def change(
        self,
        *,
        user_id: int,
        session_id: str,
        current_password: str,
        new_password: str,
        attempts: Attempts,
        code: str | None = None,
    ) -> dict[str, Any]:
        """Set a new password, end every other session of the user (the caller's stays)
        and spend the reset links already mailed. With the second factor on, `code` too."""
        user = self._accounts.user(user_id)
        _within_policy(new_password, user.email)
        self._accounts.verify_password_and_code(
            user=user,
            password=current_password,
            code=code,
            action="password_change",
            attempts=attempts,
        )
        version = self._set_password(user_id, new_password)
        if version is None:
            raise NotFound("Account not found")
        self._resets.spend_all(user_id)
        revoked = self._sessions.revoke_all(
            user_id=user_id, keep_session_id=session_id, credentials_version=version
        )
        audit.info("password_changed", user_id=user_id, session_id=session_id)
        sessions_revoked("password_change", user_id=user_id, count=revoked)
        return {"detail": "Password changed", "revoked": revoked}

    def request_reset(self, *, email: str, attempts: Attempts) -> None:
        """Queue the reset mail, counted against the address's limits. Whether the account
        exists is decided off the request path, so the answer (and its timing) is the same
        for every address."""
        attempts.reset_mail(
            MailRequest(canonical_email(email)),
            lambda: self._outbox.submit(lambda: self._send_reset(email)),
        )

    def reset(self, *, token: str, new_password: str) -> None:
        """Set the password the token's mail was for, end every session of the user and
        spend every reset token of the account. The account's guess counters start afresh
        with its new credentials version."""
        parsed = ResetToken.parse(token)
        # Checked before the hash (an unknown token costs no argon2id), spent after it.
        if parsed is None or not self._resets.is_current(parsed):
            raise InvalidResetToken()
        with self._database.session() as db:
            user = repo.get_user(db, user_id=parsed.user_id)
        if user is None:
            raise InvalidResetToken()
        _within_policy(new_password, user.email)
        password_hash = self._passwords.hash(new_password)
        if not self._resets.spend(parsed):
            raise InvalidResetToken()
        version = self._store_password(parsed.user_id, password_hash)
        if version is None:
            raise InvalidResetToken()
        # The token came by mail to the account's address: that proves the address too.
        with self._database.session() as db:
            repo.mark_email_verified(db, user_id=parsed.user_id)
        revoked = self._sessions.revoke_all(user_id=parsed.user_id, credentials_version=version)
        audit.info("password_reset", user_id=parsed.user_id)
        sessions_revoked("password_reset", user_id=parsed.user_id, count=revoked)

    def _set_password(self, user_id: int, password: str) -> int | None:
        return self._store_password(user_id, self._passwords.hash(password))

    def _store_password(self, user_id: int, password_hash: str) -> int | None:
        """The account's new credentials version, or None when it no longer exists."""
        with self._database.session() as db:
            return repo.change_password(db, user_id=user_id, password_hash=password_hash)

    def _send_reset(self, email: str) -> None:
        with self._database.session() as db:
            user = repo.get_user_by_email(db, email=email)
        if user is None:
            audit.info("password_reset_requested", known_account=False)
            return
        token = self._resets.issue(user.id)
        audit.info("password_reset_requested", known_account=True, user_id=user.id)
        self._mailer.send(
            to=user.email, subject=RESET_SUBJECT, body=self._reset_body(str(token)),
            purpose="password_reset",
        )  # fmt: skip

    def _reset_body(self, token: str) -> str:
        minutes = self._resets.ttl_seconds // 60
        lines = [
            "Someone asked to reset the password of your account.",
            "",
            f"Your reset token (valid for {minutes} minutes, usable once; any earlier one",
            "stays valid until then, and the first one used spends them all):",
            "",
            f"    {token}",
            "",
        ]
        if self._reset_url:
            lines += ["Or open this link:", "", f"    {self._reset_url.format(token=token)}", ""]
        lines += ["If it was not you, ignore this message: your password stays as it is."]
        return "\n".join(lines)


def _within_policy(password: str, email: str) -> None:
    """PasswordRefused (422) when the policy refuses `password` for the account `email`;
    checked before any hash, so nothing has changed."""
    if problem := password_problem(password, email=email):
        raise PasswordRefused("new_password", problem)
