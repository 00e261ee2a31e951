"""Shared field types and error models (the latter document responses in OpenAPI)."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

# PostgreSQL text cannot hold NUL: reject it as input (and say so in OpenAPI) rather
# than fail on insert.
NoNulStr = Annotated[str, Field(pattern=r"^[^\x00]*$")]


class ErrorResponse(BaseModel):
    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    ctx: dict[str, Any] | None = None


class ValidationErrorResponse(BaseModel):
    detail: list[ValidationErrorItem]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses."""
    descriptions = {
        400: "The request cannot be carried out as it stands",
        401: "Missing, invalid or revoked credentials",
        403: "The password given is not the account's",
        404: "Not found, or not the caller's",
        409: "Conflict",
        413: "Request body over 1 MiB",
        422: "Malformed input",
        429: "Rate limit exceeded",
        503: "A dependency (PostgreSQL or Redis) is unavailable",
    }
    return {
        status: {
            "model": ValidationErrorResponse if status == 422 else ErrorResponse,
            "description": descriptions[status],
        }
        for status in statuses
    }
