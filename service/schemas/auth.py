from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from service.schemas.common import NoNulStr

Password = Annotated[NoNulStr, Field(min_length=8, max_length=128)]


class Credentials(BaseModel):
    email: Annotated[EmailStr, StringConstraints(max_length=320)]
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
