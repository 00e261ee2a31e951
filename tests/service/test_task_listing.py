"""GET /tasks: sort orders, the `q` search and strict query parameters."""

import pytest

from tests.support.api import Api, Tokens


@pytest.fixture
def user(api: Api) -> Tokens:
    return api.new_user()


def _ids(api: Api, user: Tokens, query: str) -> list[int]:
    response = api.get(f"/tasks?{query}", headers=user.headers)
    assert response.status_code == 200, (query, response.text)
    return [task["id"] for task in response.json()["items"]]


def test_every_sort_order_with_the_id_breaking_ties(api: Api, user: Tokens) -> None:
    tasks = [api.create_task(user, title=title) for title in ("b", "a", "c", "a")]
    # Touch the first one last, so updated_at and created_at orders differ.
    api.patch(f"/tasks/{tasks[0]['id']}", json={"status": "done"}, headers=user.headers)
    ids = [task["id"] for task in tasks]
    assert _ids(api, user, "") == ids[::-1]
    assert _ids(api, user, "sort=-created_at") == ids[::-1]
    assert _ids(api, user, "sort=created_at") == ids
    assert _ids(api, user, "sort=updated_at") == [*ids[1:], ids[0]]
    assert _ids(api, user, "sort=-updated_at") == [ids[0], *ids[1:][::-1]]
    assert _ids(api, user, "sort=title") == [ids[1], ids[3], ids[0], ids[2]]
    assert _ids(api, user, "sort=-title") == [ids[2], ids[0], ids[3], ids[1]]


def test_sort_pages_are_stable(api: Api, user: Tokens) -> None:
    for _ in range(5):
        api.create_task(user, title="same")
    whole = _ids(api, user, "sort=title")
    paged = [
        i
        for offset in range(0, 5, 2)
        for i in _ids(api, user, f"sort=title&limit=2&offset={offset}")
    ]
    assert paged == whole == sorted(whole)


@pytest.mark.parametrize("sort", ["newest", "title,id", "+title", "TITLE", "id", ""])
def test_unknown_sort_is_422(api: Api, user: Tokens, sort: str) -> None:
    response = api.get("/tasks", params={"sort": sort}, headers=user.headers)
    assert response.status_code == 422


def test_q_matches_title_or_description_ignoring_case(api: Api, user: Tokens) -> None:
    in_title = api.create_task(user, title="Quarterly REPORT")
    in_description = api.create_task(user, title="other", description="the report is due")
    api.create_task(user, title="unrelated", description="nothing here")
    page = api.get("/tasks", params={"q": "RePoRt"}, headers=user.headers).json()
    assert page["total"] == 2
    assert [task["id"] for task in page["items"]] == [in_description["id"], in_title["id"]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("100%", ["100% done"]),
        ("%", ["100% done"]),
        ("a_b", ["a_b"]),
        ("_", ["a_b"]),
        ("back\\slash", ["back\\slash"]),
        ("\\", ["back\\slash"]),
        ("\\%", []),
    ],
)
def test_q_takes_wildcards_and_backslash_literally(
    api: Api, user: Tokens, q: str, expected: list[str]
) -> None:
    for title in ("100% done", "1000 done", "a_b", "axb", "back\\slash", "backslash"):
        api.create_task(user, title=title)
    page = api.get("/tasks", params={"q": q}, headers=user.headers).json()
    assert sorted(task["title"] for task in page["items"]) == expected
    assert page["total"] == len(expected)


def test_q_combines_with_status_sort_and_paging(api: Api, user: Tokens) -> None:
    wanted = [api.create_task(user, title=f"needle {n}", status="done") for n in range(3)]
    api.create_task(user, title="needle todo")
    api.create_task(user, title="hay", status="done")
    page = api.get(
        "/tasks?q=needle&status=done&sort=title&limit=2&offset=1", headers=user.headers
    ).json()
    assert page["total"] == 3
    assert [task["id"] for task in page["items"]] == [wanted[1]["id"], wanted[2]["id"]]


def test_q_sees_only_the_callers_tasks(api: Api, user: Tokens) -> None:
    api.create_task(api.new_user(), title="secret needle")
    assert api.get("/tasks?q=needle", headers=user.headers).json()["total"] == 0


@pytest.mark.parametrize("q", ["", "x" * 201, "nul\x00byte"])
def test_q_out_of_bounds_is_422(api: Api, user: Tokens, q: str) -> None:
    response = api.get("/tasks", params={"q": q}, headers=user.headers)
    assert response.status_code == 422, response.text


def test_q_bounds_are_inclusive(api: Api, user: Tokens) -> None:
    api.create_task(user, title="x" * 200)
    for q in ("x", "x" * 200):
        assert api.get("/tasks", params={"q": q}, headers=user.headers).json()["total"] == 1


def test_length_errors_say_the_limit_in_words(api: Api, user: Tokens) -> None:
    response = api.get("/tasks", params={"q": "x" * 201}, headers=user.headers)
    [error] = response.json()["detail"]
    assert error["msg"] == "String should have at most 200 characters"
    for title, words in (("t" * 201, "at most 200"), ("   ", "at least 1")):
        response = api.post("/tasks", json={"title": title}, headers=user.headers)
        [error] = response.json()["detail"]
        assert words in error["msg"], error
        assert "^" not in error["msg"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("stauts=done", ["stauts"]),
        ("limit=5&page=2&foo=1", ["page", "foo"]),
        ("limit=5&limit=6", ["limit"]),
        ("sort=title&sort=-title", ["sort"]),
        ("q=a&q=b&x=1", ["q", "x"]),
    ],
)
def test_unknown_and_repeated_parameters_are_422_naming_them(
    api: Api, user: Tokens, query: str, named: list[str]
) -> None:
    response = api.get(f"/tasks?{query}", headers=user.headers)
    assert response.status_code == 422, response.text
    locations = [error["loc"] for error in response.json()["detail"]]
    assert sorted(locations) == sorted(["query", name] for name in named)
    assert all(
        name in error["msg"] for error, name in zip(response.json()["detail"], named, strict=False)
    )


def test_unknown_parameters_are_checked_after_authentication(api: Api) -> None:
    assert api.get("/tasks?nope=1").status_code == 401
