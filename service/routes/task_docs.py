"""OpenAPI for the task routes: the responses' headers and the conditional statuses."""

from typing import Any

from service.schemas.common import error_responses

ETAG_HEADER: dict[str, Any] = {
    "ETag": {
        "description": "The task's strong entity tag; it changes with every write. Send it "
        "back in If-Match (conditional writes) or If-None-Match (conditional reads).",
        "schema": {"type": "string", "example": '"42-3"'},
    }
}
LOCATION_HEADER: dict[str, Any] = {
    "Location": {
        "description": "The new task's path, e.g. /tasks/42.",
        "schema": {"type": "string", "example": "/tasks/42"},
    }
}
COMMON_ERRORS = (401, 422, 429, 503)


def responses(
    *errors: int, success: int = 200, etag: bool = False, location: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The operation's documented responses: its success with the headers it carries, the
    common errors and `errors` (service.openapi adds the headers every response of a
    limited route carries)."""
    documented = error_responses(*sorted({*COMMON_ERRORS, *errors} - {304, 412}))
    success_headers: dict[str, Any] = {}
    if etag:
        success_headers |= ETAG_HEADER
    if location:
        success_headers |= LOCATION_HEADER
    result: dict[int | str, dict[str, Any]] = {success: {"headers": success_headers}}
    if 304 in errors:
        result[304] = {
            "description": "Not modified: If-None-Match names the task's current ETag. No body.",
            "headers": dict(ETAG_HEADER),
        }
    if 412 in errors:
        result[412] = {
            **error_responses(404)[404],
            "description": "Precondition failed: If-Match names no current ETag of the task, "
            "which is left unchanged.",
        }
    result.update(documented)
    return result
