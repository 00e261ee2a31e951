from datetime import datetime

from pydantic import BaseModel


class SessionRead(BaseModel):
    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    current: bool


class SessionList(BaseModel):
    items: list[SessionRead]


class SessionRevoked(BaseModel):
    id: str
    revoked: bool = True


class RevokedCount(BaseModel):
    revoked: int
