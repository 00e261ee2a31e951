"""Domain errors. Each carries its HTTP status; one handler renders them all."""

from typing import ClassVar


class DomainError(Exception):
    status_code: ClassVar[int] = 400
    detail: ClassVar[str] = "Bad request"
    headers: ClassVar[dict[str, str]] = {}

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


class PreconditionFailed(DomainError):
    status_code = 412
    detail = "The task has changed: If-Match names none of its current ETags"
