"""Accounts: register, log in, refresh, read and delete one's own account."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from db import repositories as repo
from db.emails import canonical_email
from db.engine import Database
from db.models import User
from service import metrics
from service.audit import audit, sessions_revoked
from service.errors import (
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    InvalidRefreshToken,
    NotFound,
    RateLimited,
    SecondFactorState,
    WrongCode,
    WrongPassword,
)
from service.services.attempts import Attempts, CodeGuess, PasswordAndCode, PasswordGuess
from service.services.factors import NOT_ON, SecondFactors
from service.services.factors import limited as factor_limited
from service.services.verification import EmailVerificationService
from sessions.devices import DeviceTokens
from sessions.known_clients import KnownClients
from sessions.passwords import PasswordHasher
from sessions.refresh import RefreshToken
from sessions.store import CredentialsChanged, RotationResult, SessionStore
from sessions.tokens import TokenCodec, new_jti


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str


def account_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "created_at": user.created_at}


def account_key(user: User) -> str:
    """What an account's guess counters are keyed by: a password change or reset starts
    them afresh (the version moves)."""
    return f"{user.id}v{user.credentials_version}"


class AccountService:
    def __init__(
        self,
        *,
        database: Database,
        sessions: SessionStore,
        tokens: TokenCodec,
        passwords: PasswordHasher,
        devices: DeviceTokens,
        known_clients: KnownClients,
        factors: SecondFactors,
        verification: EmailVerificationService | None = None,
        require_verified_email: bool = False,
    ) -> None:
        self.factors = factors
        self._database = database
        self._sessions = sessions
        self._tokens = tokens
        self._passwords = passwords
        self.devices = devices
        self._known_clients = known_clients
        # Mails every new account a token that verifies its address.
        self._verification = verification
        self._require_verified_email = require_verified_email

    def register(self, *, email: str, password: str) -> dict[str, Any]:
        with self._database.session() as db:
            if repo.get_user_by_email(db, email=email) is not None:
                raise EmailTaken()
        # Hashed outside any unit of work: no connection is held while argon2id works.
        password_hash = self._passwords.hash(password)
        try:
            with self._database.session() as db:
                user = repo.create_user(db, email=email, password_hash=password_hash)
        except repo.DuplicateEmailError:
            raise EmailTaken() from None
        audit.info("user_registered", user_id=user.id)
        if self._verification is not None:
            self._verification.send(user_id=user.id, email=user.email)
        return account_view(user)

    def login(
        self,
        *,
        email: str,
        password: str,
        client: ClientInfo,
        attempts: Attempts,
        device_token: str | None = None,
    ) -> dict[str, Any]:
        """A new session's tokens and a device token for the client. The guess is counted
        (`attempts`) before the password is hashed: by client and address, by account
        unless the client has a device token of the account or signed in to it before,
        and by device."""
        user = self.account_of(email)
        device = None
        if user is not None:
            device = self.devices.device_of(
                device_token, user_id=user.id, email=user.email_canonical
            )
        guess = PasswordGuess(
            email=canonical_email(email),
            account=account_key(user) if user else f"email:{canonical_email(email)}",
            device=device,
            known_client=user is not None
            and self._known_clients.knows(user_id=user.id, ip=client.ip),
        )
        # Unknown emails are verified against a dummy hash: same work, same answer.
        stored_hash = user.password_hash if user else None
        try:
            matches, new_hash = attempts.password_guess(
                guess, lambda: self._passwords.verify(password, stored_hash)
            )
        except RateLimited:
            metrics.LOGIN_ATTEMPTS.labels(outcome="limited").inc()
            raise
        if user is None or not matches:
            audit.warning(
                "login_failed",
                reason="unknown_email" if user is None else "wrong_password",
                user_id=user.id if user else None,
            )
            metrics.LOGIN_ATTEMPTS.labels(outcome="failure").inc()
            raise InvalidCredentials()
        if self._require_verified_email and user.email_verified_at is None:
            # Only after the right password: anyone else still gets the usual 401.
            audit.warning("login_failed", reason="email_unverified", user_id=user.id)
            metrics.LOGIN_ATTEMPTS.labels(outcome="failure").inc()
            raise EmailUnverified()
        if new_hash is not None:
            with self._database.session() as db:
                repo.rehash_password(db, user_id=user.id, password_hash=new_hash)
        if self.factors.enabled(user.id):
            # No session yet, whatever the device token: the code comes next (/login/mfa).
            metrics.LOGIN_ATTEMPTS.labels(outcome="mfa_required").inc()
            raise self.factors.challenge(user, device=device)
        return self.start_session(user, client=client, auth_methods=("password",), device=device)

    def start_session(
        self,
        user: User,
        *,
        client: ClientInfo,
        auth_methods: Sequence[str],
        device: str | None = None,
    ) -> dict[str, Any]:
        """A new session of `user`, who proved who they are by `auth_methods` (checked
        against the account as `user` was read): its tokens, and a device token for the
        client (`device`: the one a valid device token named, renewed; else a new one)."""
        jti = new_jti()
        try:
            session = self._sessions.create(
                user_id=user.id,
                credentials_version=user.credentials_version,
                jti=jti,
                ip=client.ip,
                user_agent=client.user_agent,
                auth_methods=auth_methods,
            )
        except CredentialsChanged:
            # The password changed (or the account went) while this login checked it.
            audit.warning("login_failed", reason="credentials_changed", user_id=user.id)
            metrics.LOGIN_ATTEMPTS.labels(outcome="failure").inc()
            raise InvalidCredentials() from None
        self._known_clients.remember(user_id=user.id, ip=client.ip)
        audit.info(
            "session_created", user_id=user.id, session_id=session.id, auth_methods=auth_methods
        )
        if "password" in auth_methods:
            # POST /login's outcomes; a provider's sign-in counts in oidc_logins_total.
            metrics.LOGIN_ATTEMPTS.labels(outcome="success").inc()
        for evicted in session.evicted:
            sessions_revoked("evicted", user_id=user.id, session_id=evicted)
        pair = self._token_pair(user.id, session.id, jti, int(time.time()), session.refresh)
        issued = self.devices.issue(user_id=user.id, email=user.email_canonical, device_id=device)
        return {**pair, "device_token": str(issued)}

    def account_of(self, email: str) -> User | None:
        """The account an address reaches, in any spelling of it."""
        with self._database.session() as db:
            return repo.get_user_by_email(db, email=email)

    def refresh(self, *, refresh_token: str) -> dict[str, Any]:
        token = RefreshToken.parse(refresh_token)
        if token is None:
            raise InvalidRefreshToken()
        rotation = self._sessions.rotate(token, new_jti=new_jti(), issued_at=int(time.time()))
        if rotation.result is RotationResult.REUSED:
            sessions_revoked(
                "refresh_reuse", user_id=token.user_id, session_id=token.session_id, warn=True
            )
        if rotation.refresh is None:
            raise InvalidRefreshToken()
        event = "session_refreshed"
        if rotation.result is RotationResult.REPEATED:
            event = "session_refresh_repeated"
        audit.info(event, user_id=token.user_id, session_id=token.session_id)
        return self._token_pair(
            token.user_id, token.session_id, rotation.jti, rotation.issued_at, rotation.refresh
        )

    def me(self, *, user_id: int) -> dict[str, Any]:
        with self._database.session() as db:
            user = repo.get_user(db, user_id=user_id)
            if user is None:
                raise NotFound("Account not found")
            enabled = repo.second_factor_enabled(db, user_id=user_id)
            return {
                **account_view(user),
                "email_verified": user.email_verified_at is not None,
                "mfa_enabled": enabled,
            }

    def delete(
        self, *, user_id: int, password: str, attempts: Attempts, code: str | None = None
    ) -> dict[str, Any]:
        """Delete the account and its tasks (one transaction), then end every session.
        With the second factor on, `code` too."""
        self.verify_password_and_code(
            user=self.user(user_id),
            password=password,
            code=code,
            action="account_delete",
            attempts=attempts,
        )
        with self._database.transaction() as db:
            version = repo.delete_user(db, user_id=user_id)
        if version is None:
            raise NotFound("Account not found")
        # Past the last version: a login that read the account before it went is stale.
        revoked = self._sessions.revoke_all(user_id=user_id, credentials_version=version + 1)
        self._known_clients.forget(user_id=user_id)
        audit.info("account_deleted", user_id=user_id)
        sessions_revoked("account_deleted", user_id=user_id, count=revoked)
        return {"id": user_id, "deleted": True}

    def user(self, user_id: int) -> User:
        """The account; NotFound (404) when it no longer exists."""
        user = self.find_user(user_id)
        if user is None:
            raise NotFound("Account not found")
        return user

    def find_user(self, user_id: int) -> User | None:
        with self._database.session() as db:
            return repo.get_user(db, user_id=user_id)

    def verify_password(
        self, *, user: User, password: str, action: str, attempts: Attempts
    ) -> None:
        """Check the account's current password, counted as a guess like a login's from an
        unknown client (a stolen session must not guess it freely); WrongPassword (403)."""
        guess = PasswordGuess(email=user.email_canonical, account=account_key(user))
        matches, _ = attempts.password_guess(
            guess, lambda: self._passwords.verify(password, user.password_hash)
        )
        if not matches:
            audit.warning(f"{action}_refused", reason="wrong_password", user_id=user.id)
            raise WrongPassword()

    def verify_password_and_code(
        self,
        *,
        user: User,
        password: str,
        code: str | None,
        action: str,
        attempts: Attempts,
        factor_needed: bool = False,
    ) -> None:
        """Check the password and, when the account has the second factor on, a code
        (TOTP or recovery), counted in one check against the login limits and
        MFA_RATE_LIMIT: WrongPassword or WrongCode (403). A code is not spent when the
        password is wrong. `factor_needed`: the factor must be on (else 409)."""
        factor_on = self.factors.enabled(user.id)
        guess = PasswordAndCode(
            PasswordGuess(email=user.email_canonical, account=account_key(user)),
            CodeGuess(str(user.id) if factor_on else None),
        )

        def check() -> str | None:
            """What was wrong, if anything."""
            if not self._passwords.verify(password, user.password_hash)[0]:
                return "password"
            if factor_on and self.factors.check(user_id=user.id, code=code, action=action) is None:
                return "code"
            return None

        try:
            wrong = attempts.password_and_code(guess, check)
        except RateLimited:
            if factor_on:
                factor_limited(code)
            raise
        if wrong == "password":
            audit.warning(f"{action}_refused", reason="wrong_password", user_id=user.id)
            raise WrongPassword()
        if wrong == "code":
            raise WrongCode()
        if factor_needed and not factor_on:
            raise SecondFactorState(NOT_ON)

    def _token_pair(
        self, user_id: int, session_id: str, jti: str, issued_at: int, refresh: RefreshToken
    ) -> dict[str, Any]:
        ttl = self._tokens.ttl_seconds
        access_token = self._tokens.issue(
            user_id=user_id, session_id=session_id, jti=jti, issued_at=issued_at
        )
        return {
            "access_token": access_token,
            "refresh_token": str(refresh),
            "token_type": "bearer",
            # What is left of the access token's life: all of it, unless this repeats an
            # earlier rotation.
            "expires_in": max(0, min(ttl, issued_at + ttl - int(time.time()))),
        }
