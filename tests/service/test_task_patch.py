"""PATCH /tasks/{id}: a JSON merge patch (RFC 7396) of one task."""

import json

import pytest

from tests.support.api import Api, Tokens


@pytest.fixture
def user(api: Api) -> Tokens:
    return api.new_user()


def test_only_the_fields_sent_change(api: Api, user: Tokens) -> None:
    task = api.create_task(user, title="old", description="keep me", status="in_progress")
    response = api.patch(f"/tasks/{task['id']}", json={"status": "done"}, headers=user.headers)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["status"] == "done"
    assert patched["title"] == "old"
    assert patched["description"] == "keep me"
    assert patched["id"] == task["id"]
    assert patched["created_at"] == task["created_at"]
    assert patched["updated_at"] > task["updated_at"]
    assert api.get(f"/tasks/{task['id']}", headers=user.headers).json() == patched


def test_title_is_trimmed_like_on_create(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    response = api.patch(f"/tasks/{task['id']}", json={"title": "  new  "}, headers=user.headers)
    assert response.json()["title"] == "new"


def test_null_description_clears_it(api: Api, user: Tokens) -> None:
    task = api.create_task(user, description="to be cleared")
    response = api.patch(f"/tasks/{task['id']}", json={"description": None}, headers=user.headers)
    assert response.status_code == 200
    assert response.json()["description"] is None
    assert response.json()["title"] == task["title"]


def test_merge_patch_media_type_is_accepted(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    response = api.patch(
        f"/tasks/{task['id']}",
        data=json.dumps({"title": "via merge-patch"}),
        headers={**user.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "via merge-patch"


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"status": None},
        {"title": ""},
        {"title": "   "},
        {"title": "t" * 201},
        {"status": "finished"},
        {"description": "d" * 10_001},
        {"title": 7},
        {"title": "fine", "status": None},
        [],
        "just a string",
    ],
)
def test_invalid_patches_are_422_and_change_nothing(api: Api, user: Tokens, body: object) -> None:
    task = api.create_task(user, title="untouched", description="as it was")
    response = api.patch(f"/tasks/{task['id']}", json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert all("input" not in error for error in response.json()["detail"])
    assert api.get(f"/tasks/{task['id']}", headers=user.headers).json() == task


def test_owner_id_and_timestamps_are_never_written(api: Api, user: Tokens) -> None:
    other = api.new_user()
    task = api.create_task(user)
    response = api.patch(
        f"/tasks/{task['id']}",
        json={
            "id": task["id"] + 1000,
            "owner_id": 1,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
        },
        headers=user.headers,
    )
    assert response.status_code == 200
    assert response.json() == task
    assert api.get(f"/tasks/{task['id']}", headers=user.headers).json() == task
    assert api.get("/tasks", headers=other.headers).json()["total"] == 0


def test_an_empty_patch_changes_nothing(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    response = api.patch(f"/tasks/{task['id']}", json={}, headers=user.headers)
    assert response.status_code == 200
    assert response.json() == task
    assert (
        response.headers["etag"]
        == api.get(f"/tasks/{task['id']}", headers=user.headers).headers["etag"]
    )


def test_another_users_task_is_404_and_stays_unchanged(api: Api, user: Tokens) -> None:
    owner = api.new_user()
    task = api.create_task(owner, title="private")
    response = api.patch(f"/tasks/{task['id']}", json={"title": "mine"}, headers=user.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}
    assert api.get(f"/tasks/{task['id']}", headers=owner.headers).json() == task


@pytest.mark.parametrize("task_id", ["0", "987654321", str(2**63)])
def test_missing_task_is_404(api: Api, user: Tokens, task_id: str) -> None:
    response = api.patch(f"/tasks/{task_id}", json={"title": "x"}, headers=user.headers)
    assert response.status_code == 404
