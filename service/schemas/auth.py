from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from service.schemas.common import NoNulStr
from sessions.policy import MAX_LENGTH, MIN_LENGTH, password_problem
from sessions.resets import TOKEN_PATTERN

Email = Annotated[EmailStr, StringConstraints(max_length=320)]
# What a login or a password check accepts: any password that could have been set.
Password = Annotated[NoNulStr, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]


def _within_policy(password: str) -> str:
    if problem := password_problem(password):
        # The message and its context never hold the password itself.
        raise PydanticCustomError("password_policy", f"Password {problem}")
    return password


# What registration, a password change and a reset accept as the new password.
NewPassword = Annotated[Password, AfterValidator(_within_policy)]


class Registration(BaseModel):
    email: Email
    password: NewPassword


class Credentials(BaseModel):
    email: Email
    password: Password


class UserRead(BaseModel):
    id: int
    email: str
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class RefreshRequest(BaseModel):
    refresh_token: Annotated[NoNulStr, Field(min_length=1, max_length=256)]


class Message(BaseModel):
    detail: str


class PasswordChange(BaseModel):
    current_password: Password
    new_password: NewPassword


class AccountDeletion(BaseModel):
    password: Password


class AccountDeleted(BaseModel):
    id: int
    deleted: Literal[True] = True


class PasswordChanged(BaseModel):
    detail: str
    revoked: int


class PasswordForgot(BaseModel):
    email: Email


class PasswordReset(BaseModel):
    token: Annotated[str, Field(pattern=TOKEN_PATTERN, examples=["42." + "x" * 43])]
    new_password: NewPassword
