"""OpenAPI documents the task operations as the API serves them."""

from typing import Any

import pytest

from tests.support.api import Api


@pytest.fixture(scope="module")
def spec(server: Any) -> dict[str, Any]:
    result: dict[str, Any] = Api(server.url).get("/openapi.json").json()
    return result


TASK_OPERATIONS = [
    ("post", "/tasks"),
    ("get", "/tasks"),
    ("get", "/tasks/{task_id}"),
    ("put", "/tasks/{task_id}"),
    ("patch", "/tasks/{task_id}"),
    ("delete", "/tasks/{task_id}"),
]


@pytest.mark.parametrize(("method", "path"), TASK_OPERATIONS)
def test_every_task_operation_is_described_with_its_headers(
    spec: dict[str, Any], method: str, path: str
) -> None:
    operation = spec["paths"][path][method]
    assert operation["summary"] and operation["description"]
    success = next(status for status in operation["responses"] if status.startswith("2"))
    headers = operation["responses"][success]["headers"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers)
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    carries_a_task = (method, path) not in {("get", "/tasks"), ("delete", "/tasks/{task_id}")}
    assert ("ETag" in headers) == carries_a_task
    if method == "post":
        assert "Location" in headers


def test_conditional_statuses_and_headers_are_documented(spec: dict[str, Any]) -> None:
    item = spec["paths"]["/tasks/{task_id}"]
    assert "304" in item["get"]["responses"]
    assert "if-none-match" in {p["name"].lower() for p in item["get"]["parameters"]}
    for method in ("put", "patch", "delete"):
        assert "412" in item[method]["responses"], method
        assert "if-match" in {p["name"].lower() for p in item[method]["parameters"]}


def test_patch_accepts_both_media_types(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/tasks/{task_id}"]["patch"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/merge-patch+json"}
    patch = spec["components"]["schemas"]["TaskPatch"]
    assert "required" not in patch
    # title and status may be absent but never null; description may be null.
    assert patch["properties"]["title"]["type"] == "string"
    assert "default" not in patch["properties"]["title"]
    assert {"type": "null"} in patch["properties"]["description"]["anyOf"]


def test_list_parameters_state_their_values_and_lengths(spec: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in spec["paths"]["/tasks"]["get"]["parameters"]}
    sort = spec["components"]["schemas"][parameters["sort"]["schema"]["$ref"].split("/")[-1]]
    assert sort["enum"] == [
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "title",
        "-title",
    ]
    assert parameters["sort"]["schema"]["default"] == "-created_at"
    q = next(s for s in parameters["q"]["schema"]["anyOf"] if s.get("type") == "string")
    assert (q["minLength"], q["maxLength"]) == (1, 200)


def test_task_schemas_have_examples_and_required_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    read = next(schemas[name] for name in schemas if name.startswith("TaskRead"))
    assert set(read["required"]) == {
        "id",
        "title",
        "description",
        "status",
        "created_at",
        "updated_at",
    }
    assert set(schemas["TaskPage"]["required"]) == {"items", "total", "limit", "offset"}
    assert set(schemas["TaskDeleted"]["required"]) == {"id", "deleted"}
    for name in ("TaskWrite", "TaskPatch", "TaskPage", "TaskDeleted"):
        assert schemas[name]["examples"], name
    assert read["examples"]
    title = schemas["TaskWrite"]["properties"]["title"]
    assert title["minLength"] == 1
    description = next(
        s
        for s in schemas["TaskWrite"]["properties"]["description"]["anyOf"]
        if "type" in s and s["type"] == "string"
    )
    assert description["maxLength"] == 10_000
