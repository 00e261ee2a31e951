"""JSON responses built straight from plain dicts.

Routes return these rather than letting FastAPI validate the return value against the
`response_model`: for a sync route that validation is one more thread-pool hop and a full
pydantic pass over data the repositories already shaped. The models still document the
responses in OpenAPI, and the tests check the bodies against the contract.
"""

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic_core import to_json
from starlette.responses import Response


def json_response(
    content: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    # pydantic_core writes datetimes as ISO 8601 ("...Z" for UTC), like the models would.
    return Response(to_json(content), status_code, headers, media_type="application/json")


# On responses that carry tokens: no cache, shared or private, may keep them.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Tagged(Protocol):
    @property
    def view(self) -> Any: ...
    @property
    def etag(self) -> str: ...
    @property
    def modified(self) -> bool: ...


def tagged_response(
    tagged: Tagged, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A resource with its ETag; 304 and no body when the client already has it."""
    all_headers = {"ETag": tagged.etag, **(headers or {})}
    if not tagged.modified:
        return Response(status_code=304, headers=all_headers)
    return json_response(tagged.view, status_code=status_code, headers=all_headers)
