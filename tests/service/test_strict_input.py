"""Input the service takes only in one spelling: canonical numbers in paths and queries."""

import pytest

from tests.support.api import Api, Tokens
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def owner(server_api: Api) -> Tokens:
    return server_api.new_user()


@pytest.fixture(scope="module")
def server_api(server: LiveServer) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def task_id(server_api: Api, owner: Tokens) -> int:
    task_id: int = server_api.create_task(owner, title="the one task")["id"]
    return task_id


def test_the_canonical_id_reads_the_task(server_api: Api, owner: Tokens, task_id: int) -> None:
    response = server_api.get(f"/tasks/{task_id}", headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["id"] == task_id


@pytest.mark.parametrize(
    "spelling", ["0{id}", "00{id}", "+{id}", "{id}.0", "{id}.", " {id}", "%20{id}", "{id}%20"]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_spellings_of_an_id_name_no_task(
    server_api: Api, owner: Tokens, task_id: int, spelling: str, method: str
) -> None:
    body = {"title": "renamed"} if method in ("PUT", "PATCH") else None
    path = "/tasks/" + spelling.format(id=task_id)
    response = server_api.request(method, path, json=body, headers=owner.headers)
    assert response.status_code == 404, (path, response.text)
    assert response.json() == {"detail": "Task not found"}
    # Nothing was changed or deleted through it.
    assert server_api.get(f"/tasks/{task_id}", headers=owner.headers).json()["title"] == (
        "the one task"
    )


def test_an_underscored_id_names_no_task(server_api: Api, owner: Tokens) -> None:
    # int("1_2") is 12: task 12 (whoever's) must not be what /tasks/1_2 reads.
    ids = [server_api.create_task(owner)["id"] for _ in range(2)]
    digits = str(ids[-1])
    spelled = digits[0] + "_" + digits[1:] if len(digits) > 1 else "0_" + digits
    response = server_api.get(f"/tasks/{spelled}", headers=owner.headers)
    assert response.status_code == 404


@pytest.mark.parametrize("spelling", ["abc", "1.5", "0x1f", "1e3", "", "٣"])
def test_a_path_id_that_is_no_whole_number_is_422_or_404(
    server_api: Api, owner: Tokens, spelling: str
) -> None:
    response = server_api.get(f"/tasks/{spelling}", headers=owner.headers)
    if spelling == "":
        assert response.status_code in (404, 405)  # /tasks/ names no route
        return
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=5_0", "limit"),
        ("limit=10.0", "limit"),
        ("limit=+10", "limit"),
        ("limit=010", "limit"),
        ("limit=%2010", "limit"),
        ("limit=1e1", "limit"),
        ("offset=+1", "offset"),
        ("offset=1_0", "offset"),
        ("offset=-0", "offset"),
        ("offset=0.0", "offset"),
    ],
)
def test_query_numbers_take_canonical_digits_only(
    server_api: Api, owner: Tokens, query: str, name: str
) -> None:
    response = server_api.get(f"/tasks?{query}", headers=owner.headers)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", name]
    assert "plain decimal digits" in error["msg"]


def test_canonical_query_numbers_are_taken(server_api: Api, owner: Tokens) -> None:
    response = server_api.get("/tasks?limit=50&offset=0", headers=owner.headers)
    assert response.status_code == 200
    assert (response.json()["limit"], response.json()["offset"]) == (50, 0)
