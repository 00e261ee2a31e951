"""Per-user task CRUD through HTTP, as docs/api.md describes it."""

import concurrent.futures
from datetime import datetime

import pytest
import requests

from tests.support.api import Api, Tokens


@pytest.fixture
def user(api: Api) -> Tokens:
    return api.new_user()


def test_create_returns_the_task_and_its_location(api: Api, user: Tokens) -> None:
    response = api.post(
        "/tasks",
        json={"title": "  write tests  ", "description": "all of them", "status": "in_progress"},
        headers=user.headers,
    )
    assert response.status_code == 201
    task = response.json()
    assert set(task) == {"id", "title", "description", "status", "created_at", "updated_at"}
    assert task["title"] == "write tests"
    assert task["description"] == "all of them"
    assert task["status"] == "in_progress"
    assert response.headers["location"] == f"/tasks/{task['id']}"
    assert datetime.fromisoformat(task["created_at"]).utcoffset() is not None


def test_defaults_apply_when_optional_fields_are_absent(api: Api, user: Tokens) -> None:
    task = api.create_task(user, title="minimal")
    assert task["description"] is None
    assert task["status"] == "todo"


def test_fields_a_client_may_not_set_are_never_applied(api: Api, user: Tokens) -> None:
    other = api.new_user()
    foreign = api.create_task(other)
    task = api.create_task(
        user,
        title="mine",
        id=foreign["id"],
        owner_id=12345,
        created_at="2000-01-01T00:00:00Z",
        updated_at="2000-01-01T00:00:00Z",
    )
    assert task["id"] != foreign["id"]
    assert not task["created_at"].startswith("2000")
    assert api.get(f"/tasks/{task['id']}", headers=user.headers).ok
    assert api.get(f"/tasks/{foreign['id']}", headers=other.headers).json()["title"] == "a task"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "t" * 201},
        {"title": "ok", "description": "d" * 10_001},
        {"title": "ok", "status": "finished"},
        {"title": 42},
        {"title": None},
        {"title": "bad\u0000byte"},
        {"title": "ok", "description": "bad\u0000byte"},
    ],
)
def test_invalid_task_bodies_are_422(api: Api, user: Tokens, body: dict[str, object]) -> None:
    response = api.post("/tasks", json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert all("input" not in error for error in response.json()["detail"])
    assert api.get("/tasks", headers=user.headers).json()["total"] == 0


def test_title_and_description_bounds_are_inclusive(api: Api, user: Tokens) -> None:
    task = api.create_task(user, title="t" * 200, description="d" * 10_000)
    assert len(task["title"]) == 200
    assert len(task["description"]) == 10_000


def test_nan_and_infinity_in_json_are_rejected(api: Api, user: Tokens) -> None:
    for raw in (
        '{"title": NaN}',
        '{"title": "ok", "status": Infinity}',
        '{"title": "ok", "description": -Infinity}',
    ):
        response = api.post(
            "/tasks", data=raw, headers={**user.headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, raw
    assert api.get("/tasks", headers=user.headers).json()["total"] == 0


def test_malformed_json_is_422(api: Api, user: Tokens) -> None:
    response = api.post(
        "/tasks", data='{"title": ', headers={**user.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_get_returns_the_task(api: Api, user: Tokens) -> None:
    task = api.create_task(user, title="read me")
    response = api.get(f"/tasks/{task['id']}", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == task


@pytest.mark.parametrize("task_id", ["abc", "1.5", "1e3"])
def test_non_integer_task_id_is_422(api: Api, user: Tokens, task_id: str) -> None:
    assert api.get(f"/tasks/{task_id}", headers=user.headers).status_code == 422


@pytest.mark.parametrize("task_id", ["0", "-1", "999999999", str(2**63), str(10**30)])
def test_task_ids_that_cannot_exist_are_404(api: Api, user: Tokens, task_id: str) -> None:
    for method in ("GET", "DELETE"):
        response = api.request(method, f"/tasks/{task_id}", headers=user.headers)
        assert response.status_code == 404, (method, task_id, response.text)
    response = api.put(f"/tasks/{task_id}", json={"title": "x"}, headers=user.headers)
    assert response.status_code == 404


def test_put_replaces_the_whole_task(api: Api, user: Tokens) -> None:
    task = api.create_task(user, title="old", description="old text", status="in_progress")
    response = api.put(f"/tasks/{task['id']}", json={"title": "new"}, headers=user.headers)
    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "new"
    assert updated["description"] is None
    assert updated["status"] == "todo"
    assert updated["id"] == task["id"]
    assert updated["created_at"] == task["created_at"]
    assert updated["updated_at"] > task["updated_at"]


def test_put_ignores_id_and_timestamps_in_the_body(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    body = {**task, "id": task["id"] + 1000, "created_at": "2000-01-01T00:00:00Z", "title": "t2"}
    updated = api.put(f"/tasks/{task['id']}", json=body, headers=user.headers).json()
    assert updated["id"] == task["id"]
    assert updated["created_at"] == task["created_at"]
    assert updated["title"] == "t2"


def test_invalid_put_leaves_the_task_unchanged(api: Api, user: Tokens) -> None:
    task = api.create_task(user, title="keep me")
    response = api.put(f"/tasks/{task['id']}", json={"title": ""}, headers=user.headers)
    assert response.status_code == 422
    assert api.get(f"/tasks/{task['id']}", headers=user.headers).json() == task


def test_delete_removes_the_task(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    response = api.delete(f"/tasks/{task['id']}", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {"id": task["id"], "deleted": True}
    assert api.get(f"/tasks/{task['id']}", headers=user.headers).status_code == 404
    assert api.delete(f"/tasks/{task['id']}", headers=user.headers).status_code == 404


def test_another_users_task_is_404_for_every_verb_and_stays_unchanged(
    api: Api, user: Tokens
) -> None:
    owner = api.new_user()
    task = api.create_task(owner, title="private", description="secret plans")
    path = f"/tasks/{task['id']}"
    for method, body in (("GET", None), ("PUT", {"title": "hijacked"}), ("DELETE", None)):
        response = api.request(method, path, json=body, headers=user.headers)
        assert response.status_code == 404, method
        assert response.json() == {"detail": "Task not found"}
    assert api.get(path, headers=owner.headers).json() == task
    assert api.get("/tasks", headers=user.headers).json()["total"] == 0


def test_missing_and_foreign_tasks_are_indistinguishable(api: Api, user: Tokens) -> None:
    foreign = api.create_task(api.new_user())
    missing = api.get("/tasks/987654321", headers=user.headers)
    other = api.get(f"/tasks/{foreign['id']}", headers=user.headers)
    assert (missing.status_code, missing.json()) == (other.status_code, other.json())


def test_list_is_newest_first_and_paginated(api: Api, user: Tokens) -> None:
    created = [api.create_task(user, title=f"task {i}") for i in range(7)]
    newest_first = [task["id"] for task in reversed(created)]

    page = api.get("/tasks", headers=user.headers).json()
    assert page["total"] == 7
    assert page["limit"] == 50
    assert page["offset"] == 0
    assert [task["id"] for task in page["items"]] == newest_first

    seen = []
    for offset in range(0, 7, 3):
        page = api.get(f"/tasks?limit=3&offset={offset}", headers=user.headers).json()
        assert page["limit"] == 3
        assert page["offset"] == offset
        assert page["total"] == 7
        seen += [task["id"] for task in page["items"]]
    assert seen == newest_first


def test_offset_past_the_end_gives_an_empty_page_with_the_total(api: Api, user: Tokens) -> None:
    api.create_task(user)
    api.create_task(user)
    page = api.get("/tasks?offset=5", headers=user.headers).json()
    assert page == {"items": [], "total": 2, "limit": 50, "offset": 5}


def test_pagination_edges(api: Api, user: Tokens) -> None:
    for query in ("limit=1", "limit=100", "offset=0"):
        assert api.get(f"/tasks?{query}", headers=user.headers).status_code == 200, query
    for query in ("limit=0", "limit=101", "limit=-1", "offset=-1", "limit=abc", "offset=1.5"):
        response = api.get(f"/tasks?{query}", headers=user.headers)
        assert response.status_code == 422, query


def test_list_filters_by_status(api: Api, user: Tokens) -> None:
    api.create_task(user, title="a", status="done")
    api.create_task(user, title="b", status="todo")
    api.create_task(user, title="c", status="done")
    page = api.get("/tasks?status=done", headers=user.headers).json()
    assert page["total"] == 2
    assert [task["title"] for task in page["items"]] == ["c", "a"]
    assert api.get("/tasks?status=nope", headers=user.headers).status_code == 422


def test_list_shows_only_the_callers_tasks(api: Api, user: Tokens) -> None:
    api.create_task(api.new_user(), title="not yours")
    mine = api.create_task(user, title="yours")
    page = api.get("/tasks", headers=user.headers).json()
    assert [task["id"] for task in page["items"]] == [mine["id"]]


def test_parallel_deletes_of_one_task_succeed_once(api: Api, user: Tokens) -> None:
    task = api.create_task(user)

    def delete(_: int) -> int:
        url = f"{api.base_url}/tasks/{task['id']}"
        return requests.delete(url, headers=user.headers, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(delete, range(10)))
    assert statuses == [200] + [404] * 9
