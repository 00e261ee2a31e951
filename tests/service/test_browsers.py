"""CORS for the origins in CORS_ORIGINS, and none for any other."""

import pytest

from tests.support.api import Api
from tests.support.live_server import LiveServer, StartServer

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture(scope="module")
def cors_server(start_server: StartServer) -> LiveServer:
    return start_server(CORS_ORIGINS=f"{ALLOWED}, http://localhost:5173")


def _cors_headers(headers: object) -> set[str]:
    return {name.lower() for name in headers if name.lower().startswith("access-control-")}  # type: ignore[attr-defined]


def _preflight(api: Api, origin: str, method: str = "PATCH") -> object:
    return api.request(
        "OPTIONS",
        "/tasks/1",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )


def test_preflight_from_an_allowed_origin_is_answered(cors_server: LiveServer) -> None:
    response = _preflight(Api(cors_server.url), ALLOWED)
    assert response.status_code in (200, 204)  # type: ignore[attr-defined]
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "if-none-match"} <= allowed
    methods = {m.strip() for m in headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    assert "access-control-allow-credentials" not in headers
    assert "origin" in headers["vary"].lower()


def test_preflight_from_another_origin_gets_no_cors_headers(cors_server: LiveServer) -> None:
    response = _preflight(Api(cors_server.url), OTHER)
    assert _cors_headers(response.headers) == set()  # type: ignore[attr-defined]
    assert response.status_code >= 400  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]


def test_an_allowed_origin_can_read_the_headers_it_needs(cors_server: LiveServer) -> None:
    api = Api(cors_server.url)
    tokens = api.new_user()
    response = api.post(
        "/tasks", json={"title": "from a browser"}, headers={**tokens.headers, "Origin": ALLOWED}
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "etag",
        "location",
        "retry-after",
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    } <= exposed
    assert response.headers["access-control-allow-origin"] != "*"


def test_another_origin_gets_no_cors_headers_on_requests(cors_server: LiveServer) -> None:
    api = Api(cors_server.url)
    tokens = api.new_user()
    response = api.get("/tasks", headers={**tokens.headers, "Origin": OTHER})
    assert response.status_code == 200
    assert _cors_headers(response.headers) == set()


def test_no_origin_is_allowed_by_default(api: Api) -> None:
    response = _preflight(api, ALLOWED)
    assert _cors_headers(response.headers) == set()  # type: ignore[attr-defined]
    response = api.get("/health/live", headers={"Origin": ALLOWED})
    assert _cors_headers(response.headers) == set()
