from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from service.schemas.common import NoNulStr, ResponseBody, examples
from sessions.policy import MAX_LENGTH, MIN_LENGTH, password_problem
from sessions.resets import TOKEN_PATTERN

Email = Annotated[
    EmailStr,
    StringConstraints(max_length=320),
    Field(description="An email address; every spelling of it (case, Unicode form) is one account"),
]
# What a login or a password check accepts: any password that could have been set.
Password = Annotated[
    NoNulStr,
    Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters",
    ),
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
    Field(
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters, not among the 30,000 most "
        "common passwords"
    ),
]
EXAMPLE_CREATED_AT = "2026-12-01T09:30:00.123456Z"
EXAMPLE_ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"  # noqa: S105
EXAMPLE_REFRESH_TOKEN = "42.3kLq0wVY2d5nq5jv0Pq1ZA.9sT0cQx1bQ2y6i7uVw3nXgmFz0aQ1bR5tY8uI3oP2kE"  # noqa: S105


class Registration(BaseModel):
    """A new account."""

    model_config = examples({"email": "ada@example.com", "password": "correct horse battery"})
    email: Email
    password: NewPassword


class Credentials(BaseModel):
    """An email and its password."""

    model_config = examples({"email": "ada@example.com", "password": "correct horse battery"})
    email: Email
    password: Password


class UserRead(ResponseBody):
    """An account, without its password."""

    model_config = examples(
        {"id": 42, "email": "ada@example.com", "created_at": EXAMPLE_CREATED_AT}
    )
    id: int
    email: str
    created_at: datetime


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


class RefreshRequest(BaseModel):
    """The session's current refresh token (or the one just rotated away, within the grace
    window)."""

    model_config = examples({"refresh_token": EXAMPLE_REFRESH_TOKEN})
    refresh_token: Annotated[NoNulStr, Field(min_length=1, max_length=256)]


class Message(ResponseBody):
    """What happened, in words."""

    model_config = examples({"detail": "Logged out"})
    detail: str


class PasswordChange(BaseModel):
    """The current password, to prove it is the owner, and the new one."""

    model_config = examples(
        {"current_password": "correct horse battery", "new_password": "a better passphrase"}
    )
    current_password: Password
    new_password: NewPassword


class AccountDeletion(BaseModel):
    """The account's password, to prove it is the owner."""

    model_config = examples({"password": "correct horse battery"})
    password: Password


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


class PasswordForgot(BaseModel):
    """Where to send a reset token, if an account has this address."""

    model_config = examples({"email": "ada@example.com"})
    email: Email


class PasswordReset(BaseModel):
    """The token from the reset mail and the new password."""

    model_config = examples({"token": "42." + "x" * 43, "new_password": "a new passphrase"})
    token: Annotated[str, Field(pattern=TOKEN_PATTERN, description="The token from the reset mail")]
    new_password: NewPassword
