"""Input the service takes only as documented: canonical numbers in paths and queries,
bodies sent as JSON (415 otherwise), and 422 messages in words."""

import json
from typing import Any

import pytest
import requests

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


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("9223372036854775808", id="beyond-bigint"),
        pytest.param("9" * 4301, id="4301-digits"),
        pytest.param("1" + "0" * 5000, id="5001-digits"),
        pytest.param("0" * 5000 + "{id}", id="5000-leading-zeros"),
        pytest.param("0" * 5000 + "{id}.0", id="5000-leading-zeros-and-a-fraction"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_ids_too_long_for_any_task_name_no_task(
    server_api: Api, owner: Tokens, task_id: int, spelling: str, method: str
) -> None:
    # Whole numbers all the same, however long (Python refuses to parse more than 4,300
    # digits): 404 like any id that names nothing, never a 422.
    body = {"title": "renamed"} if method in ("PUT", "PATCH") else None
    path = "/tasks/" + spelling.format(id=task_id)
    response = server_api.request(method, path, json=body, headers=owner.headers)
    assert response.status_code == 404, (method, response.text[:300])
    assert response.json() == {"detail": "Task not found"}
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


BODY_OPERATIONS = [
    ("POST", "/register", False),
    ("POST", "/login", False),
    ("POST", "/refresh", False),
    ("POST", "/password/forgot", False),
    ("POST", "/password/reset", False),
    ("POST", "/me/password", True),
    ("DELETE", "/me", True),
    ("POST", "/tasks", True),
    ("PUT", "/tasks/{id}", True),
    ("PATCH", "/tasks/{id}", True),
]


def _raw_body(
    api: Api, method: str, path: str, content_type: str | None, headers: dict[str, str]
) -> requests.Response:
    sent = {**headers} if content_type is None else {**headers, "Content-Type": content_type}
    return api.request(method, path, data=b'{"title": "sent anyway"}', headers=sent)


@pytest.mark.parametrize(("method", "path", "protected"), BODY_OPERATIONS)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/vnd.api+json",
     "multipart/form-data; boundary=x", "application/jsonx", "json"],
)  # fmt: skip
def test_a_body_not_sent_as_json_is_415_naming_the_accepted_types(
    server_api: Api,
    owner: Tokens,
    task_id: int,
    method: str,
    path: str,
    protected: bool,
    content_type: str | None,
) -> None:
    response = _raw_body(server_api, method, path.format(id=task_id), content_type, owner.headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert "application/json" in detail
    assert ("application/merge-patch+json" in detail) == (method == "PATCH")
    if method == "PATCH":
        assert response.headers["accept-patch"] == "application/json, application/merge-patch+json"
    # It spent the budget like any answer of a limited route.
    assert "x-ratelimit-remaining" in response.headers


@pytest.mark.parametrize(
    "content_type", ["application/json", "APPLICATION/JSON", "application/json; charset=utf-8"]
)
def test_json_with_parameters_or_in_capitals_is_taken(
    server_api: Api, owner: Tokens, content_type: str
) -> None:
    response = server_api.post(
        "/tasks", data=b'{"title": "json"}', headers={**owner.headers, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


def test_a_merge_patch_is_taken_on_patch_only(server_api: Api, owner: Tokens, task_id: int) -> None:
    headers = {**owner.headers, "Content-Type": "application/merge-patch+json"}
    patched = server_api.patch(f"/tasks/{task_id}", data=b"{}", headers=headers)
    assert patched.status_code == 200
    created = server_api.post("/tasks", data=b'{"title": "x"}', headers=headers)
    assert created.status_code == 415


def test_without_a_live_session_the_401_comes_before_the_415(server_api: Api) -> None:
    response = server_api.post("/tasks", data=b"title=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_415_changes_nothing(server_api: Api, owner: Tokens, task_id: int) -> None:
    before = server_api.get("/tasks?limit=100", headers=owner.headers).json()
    response = server_api.put(
        f"/tasks/{task_id}",
        data=json.dumps({"title": "replaced"}),
        headers={**owner.headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert server_api.get("/tasks?limit=100", headers=owner.headers).json() == before


def _all_422_messages(api: Api, owner: Tokens, task_id: int) -> list[dict[str, Any]]:
    """Every 422 a set of bad inputs gets, across the body, path and query."""
    attempts: list[tuple[str, str, Any]] = [
        ("POST", "/tasks", {"title": "a\x00b"}),
        ("POST", "/tasks", {"title": "ok", "description": "a\x00b"}),
        ("POST", "/tasks", {"title": " \t "}),
        ("POST", "/tasks", {"title": "t" * 201}),
        ("POST", "/tasks", {"title": "ok", "status": "later"}),
        ("PATCH", f"/tasks/{task_id}", {"title": None}),
        ("GET", "/tasks?q=a%00b", None),
        ("GET", "/tasks?q=", None),
        ("GET", "/tasks?limit=5_0", None),
        ("GET", "/tasks?sort=sideways", None),
        ("GET", "/tasks?stauts=done", None),
        ("DELETE", "/sessions/not%20an%20id", None),
        ("DELETE", "/sessions/%C3%A9t%C3%A9", None),
        ("GET", "/tasks/abc", None),
        ("POST", "/register", {"email": "not an email", "password": "x\x00" * 5}),
        ("POST", "/register", {"email": "ada@example.test", "password": "a fine passphrase"}),
        ("POST", "/register", {"email": "a" * 250 + "@example.com", "password": "pass phrase"}),
        ("POST", "/login", {"email": "ada@example.com", "password": "pass\x00word"}),
        ("POST", "/refresh", {"refresh_token": "1.a.\x00"}),
        ("POST", "/password/reset", {"token": "1.x", "new_password": "          "}),
        ("POST", "/me/password", {"current_password": "x\x00" * 5, "new_password": "aaaaaaaa"}),
        ("POST", "/tasks", {"title": "\ud800"}),
    ]
    found = []
    for method, path, body in attempts:
        response = api.request(method, path, json=body, headers=owner.headers)
        assert response.status_code in (404, 422), (method, path, response.text)
        if response.status_code == 422:
            found.extend(response.json()["detail"])
    return found


def test_no_422_shows_a_regular_expression(server_api: Api, owner: Tokens, task_id: int) -> None:
    errors = _all_422_messages(server_api, owner, task_id)
    assert len(errors) >= 20
    for error in errors:
        assert set(error) <= {"loc", "msg", "type", "ctx"}, error
        shown = json.dumps([error["msg"], error.get("ctx")])
        for regex_text in ("^", "$", "\\\\x00", "[^", "[A-Za-z", "(?:", "pattern"):
            assert regex_text not in shown, (regex_text, error)


def test_a_nul_is_named_in_words(server_api: Api, owner: Tokens) -> None:
    response = server_api.post(
        "/tasks", json={"title": "ok", "description": "a\x00b"}, headers=owner.headers
    )
    (error,) = response.json()["detail"]
    assert error == {
        "loc": ["body", "description"],
        "msg": "Text must not contain NUL characters",
        "type": "string_nul",
    }


def test_a_body_in_utf_16_is_a_422_and_creates_nothing(api: Api) -> None:
    tokens = api.new_user()
    body = json.dumps({"title": "sixteen bits"}).encode("utf-16")
    answer = api.post(
        "/tasks", data=body, headers={**tokens.headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert api.get("/tasks", headers=tokens.headers).json()["total"] == 0


def test_a_key_given_twice_in_a_body_is_a_422_naming_it(api: Api) -> None:
    tokens = api.new_user()
    body = '{"title": "first", "status": "todo", "title": "second"}'
    answer = api.post(
        "/tasks", data=body, headers={**tokens.headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "'title'" in json.dumps(answer.json())
    assert api.get("/tasks", headers=tokens.headers).json()["total"] == 0
