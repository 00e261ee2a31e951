"""Shared field types, the base of every response model, and the error models (they
document responses in OpenAPI)."""

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

# PostgreSQL text cannot hold NUL: reject it as input (and say so in OpenAPI) rather
# than fail on insert.
NoNulStr = Annotated[str, Field(pattern=r"^[^\x00]*$")]

_DIGITS = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def _plain_digits(value: Any) -> Any:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a whole number in plain decimal digits, like 20"
        )
    return value


_WHOLE_DECIMAL = re.compile(r"\s*[+-]?[0-9_]+\.0*\s*", re.ASCII)


def _names_no_id(value: Any) -> Any:
    """A path id in another spelling of a whole number (`012`, `+12`, `1_2`, `1.0`, ` 1`)
    names no resource: 0, which no id is. Anything else (`abc`, `1.5`) stays a 422."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        try:
            int(value)
        except ValueError:
            if not _WHOLE_DECIMAL.fullmatch(value):
                raise PydanticCustomError(
                    "int_parsing", "The id should be a whole number"
                ) from None
        return 0
    return value


# Query numbers: canonical decimal digits only; `5_0`, `+1`, `10.0` are 422.
QueryInt = Annotated[int, BeforeValidator(_plain_digits)]
# Path ids: canonical decimal digits name a resource; other spellings of a number are 404.
PathId = Annotated[int, BeforeValidator(_names_no_id)]


def examples(*values: dict[str, Any]) -> ConfigDict:
    """A model's config carrying OpenAPI examples of a whole body."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


class ResponseBody(BaseModel):
    """A response body: every field is always sent, those with a default too, so OpenAPI
    marks them all required."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class ErrorResponse(ResponseBody):
    """An error, in words: safe to show; never holds a password, a token or a trace."""

    model_config = examples({"detail": "Not found"})
    detail: str


class InternalErrorResponse(ResponseBody):
    """A bug on our side. The request id finds it in the service's logs."""

    model_config = examples(
        {"detail": "Internal server error", "request_id": "7f3c2a9e41d04b0c8a6e5f1d2c3b4a59"}
    )
    detail: str
    request_id: str


class UnavailableResponse(ResponseBody):
    """A dependency failed and the request was refused rather than let through: retry
    after `Retry-After` seconds."""

    model_config = examples(
        {"detail": "Session store unavailable"}, {"detail": "Database unavailable"}
    )
    detail: str = Field(description='"Session store unavailable" (Redis) or "Database unavailable"')


class ValidationErrorItem(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "title"], ["query", "limit"], ...')
    msg: str
    type: str
    ctx: dict[str, Any] | None = None


class ValidationErrorResponse(ResponseBody):
    """Every problem with the input; the submitted values are never echoed."""

    model_config = examples(
        {
            "detail": [
                {
                    "loc": ["body", "password"],
                    "msg": "String should have at least 8 characters",
                    "type": "string_too_short",
                    "ctx": {"min_length": 8},
                }
            ]
        }
    )
    detail: list[ValidationErrorItem]


ERROR_DESCRIPTIONS = {
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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses."""
    models: dict[int, type[BaseModel]] = {
        422: ValidationErrorResponse,
        503: UnavailableResponse,
    }
    return {
        status: {
            "model": models.get(status, ErrorResponse),
            "description": ERROR_DESCRIPTIONS[status],
        }
        for status in statuses
    }
