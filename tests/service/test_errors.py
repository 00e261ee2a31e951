"""Every response is JSON with a request id, errors included."""

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.support.api import Api


def test_every_response_carries_a_request_id(api: Api) -> None:
    for response in (api.get("/health/live"), api.get("/nope"), api.get("/tasks")):
        assert len(response.headers["x-request-id"]) >= 16


def test_a_sane_client_request_id_is_echoed(api: Api) -> None:
    response = api.get("/health/live", headers={"X-Request-ID": "abc-123.def:ghi_4"})
    assert response.headers["x-request-id"] == "abc-123.def:ghi_4"


@pytest.mark.parametrize("request_id", ["has spaces", "x" * 200, "semi;colon", "<script>"])
def test_an_insane_client_request_id_is_replaced(api: Api, request_id: str) -> None:
    response = api.get("/health/live", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] != request_id


def test_unknown_route_is_json_404(api: Api) -> None:
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Not Found"}


def test_wrong_method_is_json_405(api: Api) -> None:
    response = api.delete("/register")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Method Not Allowed"}


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    tokens = api.new_user()
    body = json.dumps({"title": "big", "description": "d" * (1024 * 1024)})
    response = api.post(
        "/tasks", data=body, headers={**tokens.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()
    assert api.get("/tasks", headers=tokens.headers).json()["total"] == 0


def test_chunked_body_over_one_mebibyte_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(130):
            yield b"p" * 8192
        yield b'"}'

    response = api.post("/register", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "detail" in response.json()


def test_unexpected_error_is_a_generic_json_500_with_the_request_id(
    database_url: str, redis_url: str
) -> None:
    app = create_app(Settings(app_env="test", database_url=database_url, redis_url=redis_url))

    def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-500"
    assert response.json() == {"detail": "Internal server error", "request_id": "req-500"}
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
