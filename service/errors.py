"""Domain errors. Each carries its HTTP status; one handler renders them all."""

from typing import Any, ClassVar


class DomainError(Exception):
    status_code: ClassVar[int] = 400
    detail: ClassVar[str] = "Bad request"
    headers: ClassVar[dict[str, str]] = {}
    # Fields the error's body carries besides `detail`.
    fields: ClassVar[dict[str, Any]] = {}

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail  # type: ignore[misc]
        if headers:
            self.headers = {**self.headers, **headers}  # type: ignore[misc]


class NotAuthenticated(DomainError):
    status_code = 401
    detail = "Not authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidCredentials(DomainError):
    status_code = 401
    detail = "Invalid email or password"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidRefreshToken(DomainError):
    status_code = 401
    detail = "Invalid or expired refresh token"
    headers = {"WWW-Authenticate": "Bearer"}


class NotFound(DomainError):
    status_code = 404
    detail = "Not found"


class EmailTaken(DomainError):
    status_code = 409
    detail = "An account with this email already exists"


class RateLimited(DomainError):
    status_code = 429
    detail = "Rate limit exceeded; retry later"


class WrongPassword(DomainError):
    status_code = 403
    detail = "The password is not correct"


class InvalidResetToken(DomainError):
    status_code = 400
    detail = "The reset token is unknown, used or expired"


class InvalidVerificationToken(DomainError):
    status_code = 400
    detail = "The verification token is unknown, used or expired"


class InvalidLoginCode(DomainError):
    status_code = 400
    detail = "The login code is unknown, used or expired"


class CodeChallengeRequired(DomainError):
    status_code = 400
    detail = (
        "code_challenge is required: the S256 challenge of a verifier the front end keeps "
        "and sends with the login code to POST /oidc/token"
    )


class InvalidLinkCode(DomainError):
    status_code = 400
    detail = "The link code is unknown, used, expired or another account's"


class IdentityInUse(DomainError):
    status_code = 409
    detail = (
        "The identity is linked to another account, or this account has another identity "
        "at that provider"
    )
    fields = {"code": "identity_in_use"}


class EmailUnverified(DomainError):
    """The right password, for an account whose address is not verified yet while
    REQUIRE_VERIFIED_EMAIL is on: only the owner ever sees this (a wrong password is 401)."""

    status_code = 403
    detail = "Verify your email address first: follow the link in the verification mail"
    fields = {"code": "email_unverified"}


class LastSignInMethod(DomainError):
    status_code = 409
    detail = (
        "This is the account's last way to sign in: set a password (reset it by mail) or "
        "link another provider first"
    )


class ProviderUnavailable(DomainError):
    """An OpenID Connect provider did not answer in time, or answered nonsense."""

    status_code = 503
    detail = "The identity provider is unavailable; retry later"
    headers = {"Retry-After": "5"}
    fields = {"code": "provider_error"}


class PreconditionFailed(DomainError):
    status_code = 412
    detail = "The task has changed: If-Match names none of its current ETags"


class PasswordRefused(Exception):
    """A new password the policy refuses for reasons only the account tells (it contains
    the account's email): answered 422 in the shape of a validation error, at `field`."""

    status_code = 422

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem

    def errors(self) -> list[dict[str, Any]]:
        message = f"Password {self.problem}"
        return [{"loc": ["body", self.field], "msg": message, "type": "password_policy"}]


class SecondFactorRequired(DomainError):
    """The password was right; the account's second factor is still to come (403, with
    what the client needs for it: no session exists yet)."""

    status_code = 403
    detail = "A second factor is required: send a code to /login/mfa with the mfa_token"

    def __init__(self, *, mfa_token: str, expires_in: int) -> None:
        super().__init__()
        self.fields = {  # type: ignore[misc]
            "code": "mfa_required",
            "mfa_token": mfa_token,
            "methods": ["totp", "recovery_code"],
            "expires_in": expires_in,
        }


class InvalidSecondFactor(DomainError):
    """POST /login/mfa: one answer for a wrong code and a spent, expired or unknown token."""

    status_code = 401
    detail = "Invalid code, or the mfa_token is spent or expired: log in again"
    headers = {"WWW-Authenticate": "Bearer"}


class WrongCode(DomainError):
    """A second-factor code missing or wrong on a route that needs one (nothing changes)."""

    status_code = 403
    detail = "A valid second-factor code (TOTP or recovery code) is required"


class InvalidEnrolmentCode(DomainError):
    status_code = 400
    detail = "The code does not match the secret being enrolled"


class SecondFactorState(DomainError):
    """The factor is not in the state the request needs (on, off, pending)."""

    status_code = 409
    detail = "The second factor is not in a state that allows this"
