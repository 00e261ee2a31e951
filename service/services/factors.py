"""An account's second factor: its state, enrolment, and the check of a code.

Every code checked here counts in `mfa_attempts_total` and, when wrong, in the audit log;
the caller has already spent the request's limits on it (service.services.attempts). A
TOTP code is accepted once: its time step must be later than the last accepted one, set
in the same statement (a compare-and-set in PostgreSQL), so two logins with one code
cannot both pass. A recovery code is spent by the statement that finds it.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from db import repositories as repo
from db.engine import Database
from db.models import SecondFactor, User
from service import metrics
from service.audit import audit
from service.errors import InvalidEnrolmentCode, SecondFactorRequired, SecondFactorState
from sessions import totp
from sessions.mfa_tokens import MfaTokens

Method = Literal["totp", "recovery_code"]
NOT_ON = "The second factor is not on"
ALREADY_ON = "The second factor is on already: turn it off first (DELETE /me/mfa/totp)"
NOTHING_PENDING = (
    "No enrolment to confirm (none was started, or it expired): start one with POST /me/mfa/totp"
)


def _digits(code: str) -> str:
    """A TOTP code as typed, blanks left out ("123 456")."""
    return "".join(code.split())


def method_of(code: str | None) -> str:
    """What a code looks like (the metrics' `method`): a TOTP code, a recovery code."""
    if code is None:
        return "none"
    if totp.is_totp_code(_digits(code)):
        return "totp"
    return "recovery_code" if totp.normalized_recovery_code(code) else "unknown"


def limited(code: str | None) -> None:
    metrics.MFA_ATTEMPTS.labels(method=method_of(code), outcome="limited").inc()


class SecondFactors:
    def __init__(
        self,
        *,
        database: Database,
        box: totp.SecretBox,
        tokens: MfaTokens,
        issuer: str,
        enrolment_ttl_seconds: int = 600,
    ) -> None:
        self._database = database
        self._box = box
        self.tokens = tokens
        self._issuer = issuer
        self._enrolment_ttl = timedelta(seconds=enrolment_ttl_seconds)

    def enabled(self, user_id: int) -> bool:
        with self._database.session() as db:
            return repo.second_factor_enabled(db, user_id=user_id)

    def challenge(
        self, user: User, *, device: str | None, first_method: str = "password"
    ) -> SecondFactorRequired:
        """The login's first half passed (the password, or a provider's sign-in): a token
        for the second, and the 403 that carries it. No session exists yet."""
        token = self.tokens.issue(
            user_id=user.id,
            credentials_version=user.credentials_version,
            device=device,
            first_method=first_method,
        )
        audit.info("mfa_required", user_id=user.id, first_method=first_method)
        return SecondFactorRequired(mfa_token=str(token), expires_in=self.tokens.ttl_seconds)

    def check(self, *, user_id: int, code: str | None, action: str) -> Method | None:
        """Accept `code` (a TOTP code or a recovery code) for the account, once: the method
        it proved, or None (and a `mfa_code_failed` event) when it is missing, wrong, a
        replay, or the factor is off."""
        method = method_of(code)
        with self._database.session() as db:
            factor = repo.get_second_factor(db, user_id=user_id)
            if code is None or factor is None or factor.secret_sealed is None:
                return self._failed(user_id, action, method, "no_code" if code is None else "off")
            secret = self._box.open(user_id=user_id, sealed=factor.secret_sealed)
            if method == "totp":
                step = totp.matching_step(secret, _digits(code))
                if step is None:
                    return self._failed(user_id, action, method, "wrong_code")
                if not repo.use_time_step(db, user_id=user_id, time_step=step):
                    return self._failed(user_id, action, method, "replayed")
                metrics.MFA_ATTEMPTS.labels(method=method, outcome="success").inc()
                return "totp"
            plain = totp.normalized_recovery_code(code)
            code_hash = totp.recovery_hash(secret=secret, code=plain or "")
            if plain is None or not repo.use_recovery_code(
                db, user_id=user_id, code_hash=code_hash
            ):
                return self._failed(user_id, action, method, "wrong_code")
            left = repo.unused_recovery_codes(db, user_id=user_id)
        metrics.MFA_ATTEMPTS.labels(method="recovery_code", outcome="success").inc()
        audit.warning("mfa_recovery_code_used", user_id=user_id, action=action, left=left)
        return "recovery_code"

    def _failed(self, user_id: int, action: str, method: str, reason: str) -> Method | None:
        """A code refused: counted and logged; None, the check's answer."""
        outcome = "replay" if reason == "replayed" else "failure"
        metrics.MFA_ATTEMPTS.labels(method=method, outcome=outcome).inc()
        audit.warning("mfa_code_failed", user_id=user_id, action=action, reason=reason)
        return None

    def start_enrolment(self, user: User) -> dict[str, Any]:
        """A new pending secret (replacing any pending one): shown this once, as text, an
        otpauth:// URI and its QR code."""
        secret = totp.new_secret()
        sealed = self._box.seal(user_id=user.id, secret=secret)
        with self._database.session() as db:
            repo.set_pending_second_factor(db, user_id=user.id, pending_sealed=sealed)
        uri = totp.provisioning_uri(secret=secret, account=user.email, issuer=self._issuer)
        audit.info("mfa_enrolment_started", user_id=user.id)
        return {"secret": secret, "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri)}

    def confirm(self, *, user_id: int, code: str) -> list[str]:
        """Turn the pending secret on with a code of it; the recovery codes, shown once."""
        with self._database.session() as db:
            factor = repo.get_second_factor(db, user_id=user_id)
        if factor is not None and factor.secret_sealed is not None:
            raise SecondFactorState(ALREADY_ON)
        if factor is None or factor.pending_sealed is None or not self._pending(factor):
            raise SecondFactorState(NOTHING_PENDING)
        secret = self._box.open(user_id=user_id, sealed=factor.pending_sealed)
        step = totp.matching_step(secret, _digits(code))
        if step is None:
            self._failed(user_id, "mfa_confirm", method_of(code), "wrong_code")
            raise InvalidEnrolmentCode()
        codes = totp.new_recovery_codes(secret)
        with self._database.transaction() as db:
            enabled = repo.enable_second_factor(
                db,
                user_id=user_id,
                pending_sealed=factor.pending_sealed,
                time_step=step,
                code_hashes=codes.hashes,
            )
        if not enabled:  # a concurrent enrolment or confirmation got there first
            raise SecondFactorState(NOTHING_PENDING)
        metrics.MFA_ATTEMPTS.labels(method="totp", outcome="success").inc()
        audit.info("mfa_enabled", user_id=user_id)
        return codes.codes

    def _pending(self, factor: SecondFactor) -> bool:
        """Whether its enrolment is still waiting: started (by PostgreSQL's clock) less than
        MFA_ENROLMENT_TTL_SECONDS ago (by ours)."""
        started = factor.pending_started_at
        return started is not None and datetime.now(UTC) - started < self._enrolment_ttl

    def new_recovery_codes(self, user_id: int) -> list[str]:
        """Ten new recovery codes; the old ones stop working."""
        with self._database.transaction() as db:
            factor = repo.get_second_factor(db, user_id=user_id)
            if factor is None or factor.secret_sealed is None:
                raise SecondFactorState(NOT_ON)
            secret = self._box.open(user_id=user_id, sealed=factor.secret_sealed)
            codes = totp.new_recovery_codes(secret)
            repo.replace_recovery_codes(db, user_id=user_id, code_hashes=codes.hashes)
        audit.info("mfa_recovery_codes_replaced", user_id=user_id)
        return codes.codes

    def turn_off(self, user_id: int) -> bool:
        """The factor off, its secret and recovery codes gone; True when it was on."""
        with self._database.transaction() as db:
            return repo.delete_second_factor(db, user_id=user_id)
