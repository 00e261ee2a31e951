"""The OpenAPI document as a product: every operation described, every body with an
example, the headers and the 500/503 bodies documented, always-present fields required."""

import inspect
from typing import Any

import pytest
from pydantic import BaseModel

from service.schemas import auth, common, health, identities, mfa, sessions, tasks
from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import LiveServer

JSON = "application/json"


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    response = Api(server.url).get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def schema_of(document: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    schema = content[JSON]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_every_operation_is_described(document: dict[str, Any]) -> None:
    undescribed = [name for name, op in operations(document) if not op.get("description")]
    assert undescribed == []


def test_every_json_body_has_an_example(document: dict[str, Any]) -> None:
    missing = []
    for name, operation in operations(document):
        bodies = (
            [("request", operation["requestBody"]["content"])] if "requestBody" in operation else []
        )
        bodies += [
            (status, response["content"])
            for status, response in operation["responses"].items()
            if JSON in response.get("content", {})
        ]
        for where, content in bodies:
            if JSON in content and not schema_of(document, content).get("examples"):
                missing.append(f"{name} {where}")
    assert missing == []


def test_every_response_documents_its_request_id_and_the_errors_their_retry(
    document: dict[str, Any],
) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, f"{name} {status}"
            if status in ("429", "503"):
                assert "Retry-After" in headers, f"{name} {status}"


def test_limited_routes_document_the_rate_limit_headers(document: dict[str, Any]) -> None:
    login = document["paths"]["/login"]["post"]["responses"]
    for status in ("200", "429"):
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
            login[status]["headers"]
        )
    assert (
        "X-RateLimit-Limit"
        not in document["paths"]["/health/live"]["get"]["responses"]["200"]["headers"]
    )


def test_the_rate_limit_headers_documented_are_sent(api: Api) -> None:
    email = unique_email()
    response = api.post("/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= {
        name.lower() for name in response.headers
    }


def test_500_and_503_bodies_are_modelled(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        internal = operation["responses"]["500"]
        assert set(schema_of(document, internal["content"])["required"]) == {
            "detail",
            "request_id",
        }, name
        if "503" in operation["responses"] and name != "GET /health/ready":
            unavailable = schema_of(document, operation["responses"]["503"]["content"])
            assert unavailable["title"] == "UnavailableResponse", name


# Sent only when there is something to say (the example JWT_SECRET in development).
SOMETIMES_SENT = {("GET /health/ready", "warning")}


def test_fields_always_sent_are_required(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or JSON not in response.get("content", {}):
                continue
            schema = schema_of(document, response["content"])
            always = {
                field for field in schema["properties"] if (name, field) not in SOMETIMES_SENT
            }
            assert set(schema.get("required", [])) == always, (name, status)


MODELS = [
    model
    for module in (auth, common, health, identities, mfa, sessions, tasks)
    for _, model in inspect.getmembers(module, inspect.isclass)
    if issubclass(model, BaseModel) and model.__module__ == module.__name__
]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_examples_are_valid_bodies(model: type[BaseModel]) -> None:
    for example in model.model_json_schema().get("examples", []):
        model.model_validate(example)
