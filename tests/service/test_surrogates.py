"""No input reaches a 500: strings holding lone UTF-16 surrogates (JSON can carry
`"\\ud800"`, which no UTF-8 text, and so neither PostgreSQL nor Redis, can hold), sent to
every operation, in every body field, an unknown one and a nested one, are refused before
any I/O, and nothing stored changes. The query string and the headers cannot carry them
(Starlette decodes percent-escapes with replacement characters and headers as latin-1):
the real byte sequences are sent there too, and answered without a 500."""

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import PASSWORD, Api, Tokens
from tests.support.live_server import LiveServer

SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# A string with at least one lone surrogate somewhere in it (hypothesis's own text never
# holds one).
TAINTED = st.tuples(st.text(max_size=8), SURROGATE, st.text(max_size=8)).map("".join)
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Account:
    def __init__(self, api: Api) -> None:
        self.email = api.register()
        self.tokens: Tokens = api.login(self.email)
        self.task_id: int = api.create_task(self.tokens, title="kept as it is")["id"]

    def state(self, api: Api) -> Any:
        """What is stored for the account, as the API shows it."""
        headers = self.tokens.headers
        tasks = api.get("/tasks?limit=100", headers=headers).json()
        sessions = sorted(s["id"] for s in api.get("/sessions", headers=headers).json()["items"])
        return api.get("/me", headers=headers).json(), tasks, sessions


@pytest.fixture(scope="module")
def account(server: LiveServer) -> Account:
    return Account(Api(server.url))


# Each operation that takes a body: a valid body, and the status a tainted field gets.
OPERATIONS: list[tuple[str, str, Callable[[Account], dict[str, Any]]]] = [
    ("POST", "/register", lambda a: {"email": "new@example.com", "password": "a passphrase"}),
    ("POST", "/login", lambda a: {"email": a.email, "password": PASSWORD, "device_token": "x"}),
    ("POST", "/refresh", lambda a: {"refresh_token": a.tokens.refresh_token}),
    ("POST", "/password/forgot", lambda a: {"email": a.email}),
    ("POST", "/password/reset", lambda a: {"token": "1." + "A" * 43, "new_password": "pass 1234"}),
    ("POST", "/me/password", lambda a: {"current_password": PASSWORD, "new_password": "a new pw"}),
    ("DELETE", "/me", lambda a: {"password": PASSWORD}),
    ("POST", "/tasks", lambda a: {"title": "t", "description": "d", "status": "done"}),
    ("PUT", "/tasks/{id}", lambda a: {"title": "t", "description": "d", "status": "done"}),
    ("PATCH", "/tasks/{id}", lambda a: {"title": "t", "description": "d"}),
]


Draw = Callable[[st.SearchStrategy[Any]], Any]


def _tainted_body(draw: Draw, body: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    """The body with a lone surrogate put somewhere; the field it went into (None: a key
    the operation does not take), and whether it is nested in that field's value."""
    where = draw(st.sampled_from([*body, "unknown field", "unknown key", "nested"]))
    tainted = draw(TAINTED)
    if where == "unknown field":
        return {**body, "unknown": tainted}, None, False
    if where == "unknown key":
        return {**body, tainted: "value"}, None, False
    if where == "nested":
        field = draw(st.sampled_from(list(body)))
        return {**body, field: {"inner": [1, tainted]}}, field, True
    return {**body, where: tainted}, where, False


@pytest.mark.parametrize(("method", "path", "valid"), OPERATIONS, ids=lambda v: str(v))
@EXAMPLES
@given(data=st.data())
def test_a_lone_surrogate_in_any_body_field_is_refused_and_changes_nothing(
    server: LiveServer,
    account: Account,
    method: str,
    path: str,
    valid: Callable[[Account], dict[str, Any]],
    data: st.DataObject,
) -> None:
    api = Api(server.url)
    before = account.state(api)
    sent, field, nested = _tainted_body(data.draw, valid(account))
    response = api.request(
        method, path.format(id=account.task_id), json=sent, headers=account.tokens.headers
    )
    if (path, field) == ("/password/reset", "token"):
        # The one field whose contract answers a malformed value with 400; a token that is
        # no string at all is a 422 like any other field of the wrong type.
        assert response.status_code == (422 if nested else 400), (sent, response.text)
    else:
        assert response.status_code == 422, (sent, response.text)
        errors = response.json()["detail"]
        assert any(error["type"] == "string_surrogate" for error in errors), errors
        if field is not None:
            assert ["body", field] in [error["loc"] for error in errors]
    assert account.state(api) == before


# The byte sequences a lone surrogate would be in (CESU-8, as some encoders write it),
# where a request can carry bytes rather than JSON escapes.
CESU_SURROGATE = "%ED%A0%80"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/tasks?q={CESU_SURROGATE}"),
        ("GET", f"/tasks?q=a{CESU_SURROGATE}b&sort=title"),
        ("GET", f"/tasks?status={CESU_SURROGATE}"),
        ("GET", f"/tasks?{CESU_SURROGATE}=1"),
        ("GET", f"/tasks/{CESU_SURROGATE}"),
        ("DELETE", f"/sessions/{CESU_SURROGATE}"),
        ("GET", f"/tasks/1{CESU_SURROGATE}"),
    ],
)
def test_surrogate_bytes_in_a_query_or_path_are_no_500(
    server: LiveServer, account: Account, method: str, path: str
) -> None:
    api = Api(server.url)
    before = account.state(api)
    response = api.request(method, path, headers=account.tokens.headers)
    assert response.status_code in (200, 404, 422), response.text
    assert response.headers["content-type"] == "application/json"
    assert account.state(api) == before


@pytest.mark.parametrize(
    "header", ["If-Match", "If-None-Match", "User-Agent", "X-Request-ID", "Authorization"]
)
def test_surrogate_bytes_in_a_header_are_no_500(
    server: LiveServer, account: Account, header: str
) -> None:
    api = Api(server.url)
    before = account.state(api)
    value = b"\xed\xa0\x80 \xed\xb0\x80"
    headers: dict[str, str | bytes] = {**account.tokens.headers, header: value}
    path = f"/tasks/{account.task_id}"
    for method, body in (("GET", None), ("PATCH", {"title": "kept as it is"})):
        response = api.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 304, 401, 412), (header, response.text)
    login = api.post(
        "/login",
        json={"email": account.email, "password": PASSWORD},
        headers={header: value} if header != "Authorization" else {},
    )
    assert login.status_code == 200, login.text
    # The PATCH wrote the same title again (a new updated_at); nothing else changed.
    assert _contents(account.state(api)) == _contents(before)


def _contents(state: Any) -> Any:
    me, tasks, _ = state
    fields = ("id", "title", "description", "status")
    return me, [{name: task[name] for name in fields} for task in tasks["items"]]
