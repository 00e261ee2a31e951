"""The second factor as the caller sees it: enrol, confirm, turn off, new recovery codes;
and the second half of a login (POST /login/mfa)."""

from typing import Any

from db.models import User
from service.audit import audit
from service.errors import InvalidSecondFactor, RateLimited, SecondFactorState
from service.services.accounts import AccountService, ClientInfo
from service.services.attempts import Attempts, CodeGuess
from service.services.factors import ALREADY_ON, SecondFactors, limited


class SecondFactorService:
    def __init__(self, *, accounts: AccountService, factors: SecondFactors) -> None:
        self._accounts = accounts
        self._factors = factors

    def enrol(self, *, user_id: int, password: str, attempts: Attempts) -> dict[str, Any]:
        """A new secret, pending until a code of it confirms it (403 wrong password, 409
        when the factor is on already)."""
        user = self._accounts.user(user_id)
        self._accounts.verify_password(
            user=user, password=password, action="mfa_enrol", attempts=attempts
        )
        if self._factors.enabled(user_id):
            raise SecondFactorState(ALREADY_ON)
        return self._factors.start_enrolment(user)

    def confirm(self, *, user_id: int, code: str, attempts: Attempts) -> list[str]:
        """The pending secret on, proved by a code of it: ten recovery codes (400 wrong
        code, 409 nothing pending). Counted against MFA_RATE_LIMIT."""
        try:
            return attempts.code_guess(
                CodeGuess(str(user_id)), lambda: self._factors.confirm(user_id=user_id, code=code)
            )
        except RateLimited:
            limited(code)
            raise

    def turn_off(self, *, user_id: int, password: str, code: str, attempts: Attempts) -> None:
        """Off, with the password and a code (TOTP or recovery): the secret and the
        recovery codes are gone. Sessions stay: whoever turns it off holds both."""
        self._accounts.verify_password_and_code(
            user=self._accounts.user(user_id),
            password=password,
            code=code,
            action="mfa_disable",
            attempts=attempts,
            factor_needed=True,
        )
        self._factors.turn_off(user_id)
        audit.info("mfa_disabled", user_id=user_id)

    def new_recovery_codes(
        self, *, user_id: int, password: str, code: str, attempts: Attempts
    ) -> list[str]:
        """Ten new recovery codes, with the password and a code; the old ones die."""
        self._accounts.verify_password_and_code(
            user=self._accounts.user(user_id),
            password=password,
            code=code,
            action="mfa_recovery_codes",
            attempts=attempts,
            factor_needed=True,
        )
        return self._factors.new_recovery_codes(user_id)

    def login(
        self, *, mfa_token: str, code: str, client: ClientInfo, attempts: Attempts
    ) -> dict[str, Any]:
        """The second half of a login: the session `/login` would have started, once a
        code proves the factor. One answer (401) for a wrong code and a malformed, spent
        or expired token; the token dies after MAX_FAILURES wrong codes."""
        tokens = self._factors.tokens
        pending = tokens.find(mfa_token)
        user_id = pending.token.user_id if pending is not None else None

        def check() -> tuple[User, str] | None:
            """The account and the method its code proved; None for no proof."""
            if pending is None:
                return None
            user = self._accounts.find_user(pending.token.user_id)
            if user is None or user.credentials_version != pending.credentials_version:
                # The password changed (or was reset, or the account went) since the first
                # half checked it: no code is spent on a login that cannot complete.
                audit.warning("mfa_login_failed", reason="credentials_changed", user_id=user_id)
                return None
            method = self._factors.check(user_id=user.id, code=code, action="login")
            return None if method is None else (user, method)

        # Counted against the account's MFA_RATE_LIMIT before the code is looked at; a
        # token that names no pending login spends the client's budget only.
        try:
            proved = attempts.code_guess(CodeGuess(str(user_id) if user_id else None), check)
        except RateLimited:
            limited(code)
            raise
        if pending is None:
            audit.warning("mfa_login_failed", reason="invalid_token")
            raise InvalidSecondFactor()
        if proved is None:
            tokens.fail(pending)
            raise InvalidSecondFactor()
        if not tokens.spend(pending):  # a concurrent login spent it first
            audit.warning("mfa_login_failed", reason="token_spent", user_id=user_id)
            raise InvalidSecondFactor()
        user, method = proved
        return self._accounts.start_session(
            user, client=client, auth_methods=(pending.first_method, method), device=pending.device
        )
