from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from db.emails import MAX_CANONICAL_LENGTH, canonical_email
from service.schemas.common import NO_NUL, Documented, Input, ResponseBody, examples
from sessions.devices import MAX_LENGTH as DEVICE_TOKEN_MAX
from sessions.policy import MAX_LENGTH, MIN_LENGTH, SCHEMA_PATTERN, password_problem
from sessions.resets import MAX_TOKEN_LENGTH

# email-validator's rules, which the schema's `format: email` does not say: at most 254
# characters, and no special-use domain (RFC 6761: .arpa, .invalid, .local, .localhost,
# .onion, .test), which the pattern states (case-insensitively, as the rule is).
MAX_EMAIL_LENGTH = 254
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")
SPECIAL_USE_PATTERN = (
    "^(?!.*[@.](?:"
    + "|".join("".join(f"[{c.upper()}{c}]" for c in name) for name in _SPECIAL_USE)
    + r")\.?$)"
)
Email = Annotated[
    EmailStr,
    StringConstraints(max_length=MAX_EMAIL_LENGTH),
    Documented({"pattern": SPECIAL_USE_PATTERN}),
    Field(
        description="An email address that can receive mail: up to 254 characters, not at a "
        "special-use domain (.arpa, .invalid, .local, .localhost, .onion, .test). Every "
        "spelling of it (case, Unicode form) is one account"
    ),
]


def _fits_canonical(email: str) -> str:
    if len(canonical_email(email)) > MAX_CANONICAL_LENGTH:
        # The message never repeats the address.
        raise PydanticCustomError(
            "email_too_long",
            f"The email address is too long once normalised (Unicode NFKC and case folding "
            f"make it longer than {MAX_CANONICAL_LENGTH} characters)",
        )
    return email


# What registration accepts: an address whose canonical form (db.emails) fits its column.
NewEmail = Annotated[Email, AfterValidator(_fits_canonical)]
# What a login or a password check accepts: any password that could have been set.
Password = Annotated[
    str,
    Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters",
    ),
    NO_NUL,
]

# A second-factor code: a TOTP code (6 digits) or a recovery code (`xxxxx-xxxxx`).
SecondFactorCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="A code of the authenticator app (6 digits) or an unused recovery code "
        "(`xxxxx-xxxxx`; case, blanks and the dash do not matter)",
    ),
    NO_NUL,
]


def _within_policy(password: str) -> str:
    if problem := password_problem(password):
        # The message and its context never hold the password itself.
        raise PydanticCustomError("password_policy", f"Password {problem}")
    return password


# What registration, a password change and a reset accept as the new password.
NewPassword = Annotated[
    Password,
    AfterValidator(_within_policy),
    # The rules a pattern can state (no NUL, not only whitespace, not one character
    # repeated); the others are in the description.
    Documented({"pattern": SCHEMA_PATTERN}),
    Field(
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters; not among the 30,000 most "
        "common passwords, not only whitespace, not one character repeated, and not "
        "containing the account's email address or the part before its @ (when that part "
        "has 3 characters or more)"
    ),
]
EXAMPLE_CREATED_AT = "2026-12-01T09:30:00.123456Z"
EXAMPLE_ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"  # noqa: S105
EXAMPLE_REFRESH_TOKEN = "42.3kLq0wVY2d5nq5jv0Pq1ZA.9sT0cQx1bQ2y6i7uVw3nXgmFz0aQ1bR5tY8uI3oP2kE"  # noqa: S105
EXAMPLE_DEVICE_TOKEN = (
    "42.Zt4n0RkqLw2bYd8vQmXc1A.1788000000.q0Jd3pYc8sVb2TnLx7aKm4WfR9eH1uZo6iGtBy5CwDs"  # noqa: S105
)


class Registration(Input):
    """A new account."""

    model_config = examples({"email": "ada@example.com", "password": "correct horse battery"})
    email: NewEmail
    password: NewPassword

    @field_validator("password")
    @classmethod
    def _not_the_email(cls, password: str, info: ValidationInfo) -> str:
        # The rules that need the account: only its email is known here.
        email = info.data.get("email")
        if email is not None and (problem := password_problem(password, email=str(email))):
            raise PydanticCustomError("password_policy", f"Password {problem}")
        return password


class Credentials(Input):
    """An email and its password; and the device token of an earlier login of this client,
    if it has one."""

    model_config = examples(
        {"email": "ada@example.com", "password": "correct horse battery"},
        {
            "email": "ada@example.com",
            "password": "correct horse battery",
            "device_token": EXAMPLE_DEVICE_TOKEN,
        },
    )
    email: Email
    password: Password
    device_token: str | None = Field(
        default=None,
        max_length=DEVICE_TOKEN_MAX,
        description="The `device_token` of an earlier login of this client: a valid one of "
        "this account keeps the login out of the account-wide failure limit; anything else "
        "is ignored",
    )


class UserRead(ResponseBody):
    """An account, without its password."""

    model_config = examples(
        {"id": 42, "email": "ada@example.com", "created_at": EXAMPLE_CREATED_AT}
    )
    id: int
    email: str
    created_at: datetime


class AccountRead(UserRead):
    """The caller's account: whether its address is verified and its second factor on."""

    model_config = examples(
        {
            "id": 42,
            "email": "ada@example.com",
            "created_at": EXAMPLE_CREATED_AT,
            "email_verified": True,
            "mfa_enabled": True,
        }
    )
    email_verified: bool = Field(
        description="A mail to the address proved it reaches the owner (a verification "
        "link, a reset by mail), or the provider that created the account vouched for it"
    )
    mfa_enabled: bool = Field(description="A TOTP second factor is on: logins ask for a code")


class TokenPair(ResponseBody):
    """The tokens of one session: send the access token as `Authorization: Bearer ...`;
    trade the refresh token at /refresh for a new pair before the access token expires."""

    model_config = examples(
        {
            "access_token": EXAMPLE_ACCESS_TOKEN,
            "refresh_token": EXAMPLE_REFRESH_TOKEN,
            "token_type": "bearer",
            "expires_in": 900,
        }
    )
    access_token: str = Field(description="A JWT naming the session; dies with it")
    refresh_token: str = Field(description="Single use: /refresh spends it")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires")


class LoginTokens(TokenPair):
    """A new session's tokens, and a device token for this client (see `device_token`)."""

    model_config = examples(
        {
            "access_token": EXAMPLE_ACCESS_TOKEN,
            "refresh_token": EXAMPLE_REFRESH_TOKEN,
            "token_type": "bearer",
            "expires_in": 900,
            "device_token": EXAMPLE_DEVICE_TOKEN,
        }
    )
    device_token: str = Field(
        description="Opaque and long-lived (DEVICE_TOKEN_TTL_SECONDS): keep it, as a secret, "
        "and send it with this client's next logins to this account. Every login answers a "
        "fresh one."
    )


class RefreshRequest(Input):
    """The session's current refresh token (or the one just rotated away, within the grace
    window)."""

    model_config = examples({"refresh_token": EXAMPLE_REFRESH_TOKEN})
    refresh_token: Annotated[str, Field(min_length=1, max_length=256), NO_NUL]


class Message(ResponseBody):
    """What happened, in words."""

    model_config = examples({"detail": "Logged out"})
    detail: str


class PasswordChange(Input):
    """The current password, to prove it is the owner, and the new one; with the second
    factor on, a code too."""

    model_config = examples(
        {"current_password": "correct horse battery", "new_password": "a better passphrase"},
        {
            "current_password": "correct horse battery",
            "new_password": "a better passphrase",
            "code": "123456",
        },
    )
    current_password: Password
    new_password: NewPassword
    code: SecondFactorCode | None = Field(
        default=None, description="Required when the second factor is on (403 without)"
    )


class AccountDeletion(Input):
    """The account's password, to prove it is the owner; with the second factor on, a
    code too."""

    model_config = examples(
        {"password": "correct horse battery"},
        {"password": "correct horse battery", "code": "123456"},
    )
    password: Password
    code: SecondFactorCode | None = Field(
        default=None, description="Required when the second factor is on (403 without)"
    )


class AccountDeleted(ResponseBody):
    """The account, its tasks and its sessions are gone."""

    model_config = examples({"id": 42, "deleted": True})
    id: int
    deleted: Literal[True] = True


class PasswordChanged(ResponseBody):
    """The password is changed; every other session of the account has ended."""

    model_config = examples({"detail": "Password changed", "revoked": 2})
    detail: str
    revoked: int = Field(description="Other sessions ended")


class PasswordForgot(Input):
    """Where to send a reset token, if an account has this address."""

    model_config = examples({"email": "ada@example.com"})
    email: Email


class PasswordReset(Input):
    """The token from the reset mail and the new password."""

    model_config = examples({"token": "42." + "x" * 43, "new_password": "a new passphrase"})
    # A token of any other shape (too long, a lone surrogate...) is refused like an
    # unknown one, by the service: 400, not 422.
    surrogates_allowed = frozenset({"token"})
    token: Annotated[
        str,
        Documented({"maxLength": MAX_TOKEN_LENGTH}),
        Field(description="The token from the reset mail"),
    ]
    new_password: NewPassword
