"""Shared field types, the base of every response model, and the error models (they
document responses in OpenAPI)."""

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes Annotated's extras
class Documented:
    """Adds keywords to a field's JSON schema (OpenAPI) without validating by them: for
    rules that a validator checks and says in words (a pattern's own message would show
    the regular expression)."""

    keywords: dict[str, Any]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "Text must not contain NUL characters")
    return value


# PostgreSQL text cannot hold NUL: reject it as input (and say so in OpenAPI, as a
# pattern) rather than fail on insert.
NO_NUL_PATTERN = r"^[^\x00]*$"


class NoNul:
    """`Annotated[str, Field(...), NO_NUL]`: no NUL character, said in words, and stated in
    OpenAPI as a pattern. After the Field, so that its length bounds stay string bounds."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_no_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NO_NUL_PATTERN
        return json_schema


NO_NUL = NoNul()
NoNulStr = Annotated[str, NO_NUL]

SURROGATE = (
    "Text must be valid Unicode: it holds a lone UTF-16 surrogate (a code point from "
    "U+D800 to U+DFFF without its pair)"
)


def has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in `value` (a JSON value: nested lists and objects, keys
    included) holds a code point no UTF-8 text can: PostgreSQL and Redis would refuse it."""
    if isinstance(value, str):
        if value.isascii():
            return False
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_lone_surrogate(item) for item in value)
    return False


class Input(BaseModel):
    """The base of every request body and query model. JSON can carry a lone surrogate
    (`"\\ud800"`) that Python decodes into a string no database can store: any string
    that holds one, in any field (nested ones and unknown ones too), is a 422 here, before
    the route does any I/O. A field listed in `surrogates_allowed` gets it as sent (the
    reset token: malformed like any other shape, which the contract answers with 400)."""

    surrogates_allowed: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _valid_unicode(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name not in cls.surrogates_allowed and has_lone_surrogate(value):
            raise PydanticCustomError("string_surrogate", SURROGATE)
        return value

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode_elsewhere(cls, data: Any) -> Any:
        # The fields' own check names the field; this one covers what no field takes.
        if isinstance(data, dict):
            known = {name for name in cls.model_fields} | {
                field.alias for field in cls.model_fields.values() if field.alias
            }
            for key, value in data.items():
                if key not in known and (has_lone_surrogate(key) or has_lone_surrogate(value)):
                    raise PydanticCustomError("string_surrogate", SURROGATE)
        return data


_DIGITS = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def _plain_digits(value: Any) -> Any:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a whole number in plain decimal digits, like 20"
        )
    return value


# A whole number as Python's int() or float() might spell it: signs, underscores between
# digits, a zero fraction, blanks around. Any Unicode decimal digits, as int() takes them.
_WHOLE_NUMBER = re.compile(r"\s*[+-]?\d+(?:_\d+)*(?:\.0*)?\s*")
# Ids are bigint: 19 digits at most. A longer canonical number names no resource either.
_MAX_ID_DIGITS = 19


def _names_no_id(value: Any) -> Any:
    """A path id in another spelling of a whole number (`012`, `+12`, `1_2`, `1.0`, ` 1`),
    or one too long for any id (Python refuses to parse more than 4,300 digits), names no
    resource: 0, which no id is. Anything else (`abc`, `1.5`) stays a 422."""
    if not isinstance(value, str):
        return value
    if _DIGITS.fullmatch(value):
        return value if len(value) <= _MAX_ID_DIGITS else 0
    if not _WHOLE_NUMBER.fullmatch(value):
        raise PydanticCustomError("int_parsing", "The id should be a whole number")
    return 0


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
    403: "The password (or the second-factor code) given is not right",
    404: "Not found, or not the caller's",
    409: "Conflict",
    413: "Request body over 1 MiB",
    415: "The body is not sent as JSON: no Content-Type, or one this operation does not take",
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
