"""ETags and conditional requests on one task (RFC 9110 §13)."""

import concurrent.futures

import pytest
import requests

from tests.support.api import Api, Tokens
from tests.support.live_server import LiveServer, StartServer


@pytest.fixture
def user(api: Api) -> Tokens:
    return api.new_user()


def _etag(response: requests.Response) -> str:
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), etag  # strong: no W/
    return etag


def test_every_response_carrying_a_task_has_its_etag(api: Api, user: Tokens) -> None:
    created = api.post("/tasks", json={"title": "tagged"}, headers=user.headers)
    task_id = created.json()["id"]
    path = f"/tasks/{task_id}"
    first = _etag(created)
    assert _etag(api.get(path, headers=user.headers)) == first
    put = api.put(path, json={"title": "again"}, headers=user.headers)
    patched = api.patch(path, json={"status": "done"}, headers=user.headers)
    etags = [first, _etag(put), _etag(patched)]
    assert len(set(etags)) == 3
    assert _etag(api.get(path, headers=user.headers)) == etags[-1]


def test_etag_changes_on_every_write_even_back_to_back(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    path = f"/tasks/{task['id']}"
    seen = {_etag(api.get(path, headers=user.headers))}
    for _ in range(20):
        # The same content each time: only the version tells the writes apart.
        seen.add(_etag(api.put(path, json={"title": "same"}, headers=user.headers)))
    assert len(seen) == 21


def test_if_none_match_with_the_current_etag_is_304_without_body(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    path = f"/tasks/{task['id']}"
    etag = _etag(api.get(path, headers=user.headers))
    for header in (etag, f"W/{etag}", f'"0-0", {etag}', "*"):
        response = api.get(path, headers={**user.headers, "If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag


def test_if_none_match_with_an_old_etag_gets_the_task(api: Api, user: Tokens) -> None:
    task = api.create_task(user)
    path = f"/tasks/{task['id']}"
    old = _etag(api.get(path, headers=user.headers))
    api.patch(path, json={"title": "changed"}, headers=user.headers)
    response = api.get(path, headers={**user.headers, "If-None-Match": old})
    assert response.status_code == 200
    assert response.json()["title"] == "changed"


def test_if_none_match_does_not_reveal_another_users_task(api: Api, user: Tokens) -> None:
    owner = api.new_user()
    created = api.post("/tasks", json={"title": "theirs"}, headers=owner.headers)
    path = f"/tasks/{created.json()['id']}"
    response = api.get(path, headers={**user.headers, "If-None-Match": _etag(created)})
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_write_with_the_current_etag_succeeds(api: Api, user: Tokens, method: str) -> None:
    created = api.post("/tasks", json={"title": "t"}, headers=user.headers)
    path = f"/tasks/{created.json()['id']}"
    response = api.request(
        method, path, json={"title": "u"}, headers={**user.headers, "If-Match": _etag(created)}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("if_match", ["stale", "W/current", '"1-1"', "garbage", '""'])
def test_write_naming_no_current_etag_is_412_and_changes_nothing(
    api: Api, user: Tokens, method: str, if_match: str
) -> None:
    created = api.post("/tasks", json={"title": "t"}, headers=user.headers)
    task, path = created.json(), f"/tasks/{created.json()['id']}"
    current = _etag(created)
    if if_match == "stale":
        api.put(path, json={"title": "t"}, headers=user.headers)
        task = api.get(path, headers=user.headers).json()
        header = current
    elif if_match == "W/current":
        header = f"W/{current}"  # If-Match compares strongly: a weak tag never matches
    else:
        header = if_match
    response = api.request(
        method, path, json={"title": "u"}, headers={**user.headers, "If-Match": header}
    )
    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()
    assert api.get(path, headers=user.headers).json() == task


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "tag",
    [
        pytest.param('"{id}-9223372036854775808"', id="version-beyond-bigint"),
        pytest.param('"{id}-' + "9" * 5000 + '"', id="version-of-5000-digits"),
        pytest.param('"' + "9" * 5000 + '-1"', id="id-of-5000-digits"),
        pytest.param('"{id}-' + "0" * 5000 + '1"', id="version-with-5000-leading-zeros"),
    ],
)
def test_an_etag_with_numbers_no_task_can_have_is_412_not_500(
    api: Api, user: Tokens, method: str, tag: str
) -> None:
    # Versions are bigint: a tag beyond that names no version and must not reach the
    # database (nor Python's limit on parsing long numbers).
    created = api.post("/tasks", json={"title": "t"}, headers=user.headers)
    task, path = created.json(), f"/tasks/{created.json()['id']}"
    header = tag.replace("{id}", str(task["id"]))
    response = api.request(
        method, path, json={"title": "u"}, headers={**user.headers, "If-Match": header}
    )
    assert response.status_code == 412, response.text
    assert api.get(path, headers=user.headers).json() == task
    # Listed beside the current ETag, it does not keep that one from matching.
    both = {**user.headers, "If-Match": f"{header}, {_etag(created)}"}
    assert api.request(method, path, json={"title": "u"}, headers=both).status_code == 200


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_star_matches_any_existing_task(api: Api, user: Tokens, method: str) -> None:
    task = api.create_task(user)
    star = {**user.headers, "If-Match": "*"}
    response = api.request(method, f"/tasks/{task['id']}", json={"title": "u"}, headers=star)
    assert response.status_code == 200
    missing = api.request(method, "/tasks/987654321", json={"title": "u"}, headers=star)
    assert missing.status_code == 404


def test_if_match_list_naming_the_current_etag_matches(api: Api, user: Tokens) -> None:
    created = api.post("/tasks", json={"title": "t"}, headers=user.headers)
    path = f"/tasks/{created.json()['id']}"
    header = f'"1-99", {_etag(created)}'
    response = api.patch(path, json={"title": "u"}, headers={**user.headers, "If-Match": header})
    assert response.status_code == 200


def test_another_users_task_is_404_not_412(api: Api, user: Tokens) -> None:
    owner = api.new_user()
    created = api.post("/tasks", json={"title": "theirs"}, headers=owner.headers)
    path = f"/tasks/{created.json()['id']}"
    for header in (_etag(created), '"0-0"', "*"):
        for method in ("PUT", "PATCH", "DELETE"):
            response = api.request(
                method, path, json={"title": "x"}, headers={**user.headers, "If-Match": header}
            )
            assert response.status_code == 404, (method, header)
    assert api.get(path, headers=owner.headers).json() == created.json()


@pytest.fixture(scope="module")
def wide_server(start_server: StartServer) -> LiveServer:
    # Ten request threads, so the ten writes below really reach PostgreSQL together.
    return start_server(THREAD_POOL_SIZE="10")


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_concurrent_conditional_writes_succeed_exactly_once(
    wide_server: LiveServer, method: str
) -> None:
    api = Api(wide_server.url)
    user = api.new_user()
    created = api.post("/tasks", json={"title": "contended"}, headers=user.headers)
    url = f"{api.base_url}/tasks/{created.json()['id']}"
    headers = {**user.headers, "If-Match": _etag(created)}

    def write(n: int) -> requests.Response:
        return requests.request(
            method, url, json={"title": f"writer {n}"}, headers=headers, timeout=30
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(write, range(10)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * 9
    winner = next(response for response in responses if response.status_code == 200)
    current = requests.get(url, headers=user.headers, timeout=30)
    assert current.json() == winner.json()
    assert current.headers["etag"] == winner.headers["etag"]


def test_concurrent_conditional_deletes_succeed_exactly_once(wide_server: LiveServer) -> None:
    api = Api(wide_server.url)
    user = api.new_user()
    created = api.post("/tasks", json={"title": "contended"}, headers=user.headers)
    url = f"{api.base_url}/tasks/{created.json()['id']}"
    headers = {**user.headers, "If-Match": _etag(created)}

    def delete(_: int) -> int:
        return requests.delete(url, headers=headers, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(delete, range(10)))
    # The losers find no task at all once the winner's delete has committed.
    assert statuses[0] == 200
    assert statuses.count(200) == 1
    assert set(statuses[1:]) <= {404, 412}
