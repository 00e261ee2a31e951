"""Admission: one decision per request, whatever the request: who is calling, is the
session live, may they (service/edge/admission.py)."""

import concurrent.futures

import pytest
import redis
import requests

from tests.support.api import PASSWORD, Api, Tokens
from tests.support.live_server import LiveServer, StartServer

BUDGET = 40
REVOKE = 5


@pytest.fixture(scope="module")
def limited(start_server: StartServer) -> LiveServer:
    return start_server(
        workers=2,
        RATE_LIMIT=f"{BUDGET}/minute",
        REVOKE_RATE_LIMIT=f"{REVOKE}/minute",
        REGISTER_RATE_LIMIT="1000/hour",
        LOGIN_RATE_LIMIT="1000/minute",
    )


@pytest.fixture(autouse=True)
def fresh_budgets(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("LIMITS:*"):
        client.delete(key)


def _spend_budget(api: Api, tokens: Tokens) -> None:
    """Read with `tokens` until the user's budget is spent."""
    statuses = [api.get("/tasks", headers=tokens.headers).status_code for _ in range(BUDGET)]
    assert set(statuses) <= {200, 429}
    assert api.get("/tasks", headers=tokens.headers).status_code == 429


def test_a_thief_spending_the_budget_never_keeps_the_owner_from_revoking(
    limited: LiveServer,
) -> None:
    api = Api(limited.url)
    email = api.register()
    owner, thief = api.login(email), api.login(email)
    _spend_budget(api, thief)  # one budget per user: the owner's is spent too
    assert api.get("/sessions", headers=owner.headers).status_code == 429
    # Ending every session is not refused.
    ended = api.post("/logout/all", headers=owner.headers)
    assert ended.status_code == 200, ended.text
    assert ended.json()["revoked"] == 2
    assert api.get("/tasks", headers=thief.headers).status_code in (401, 429)
    assert api.post("/logout", headers=thief.headers).status_code == 401


def test_ending_one_session_and_logging_out_are_never_starved(limited: LiveServer) -> None:
    api = Api(limited.url)
    email = api.register()
    owner, thief = api.login(email), api.login(email)
    # The owner learns the thief's session id while the budget lasts.
    sessions = api.get("/sessions", headers=owner.headers).json()["items"]
    thief_id = next(item["id"] for item in sessions if not item["current"])
    _spend_budget(api, thief)
    revoked = api.delete(f"/sessions/{thief_id}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"id": thief_id, "revoked": True}
    assert revoked.headers["x-ratelimit-limit"] == str(REVOKE)
    assert api.post("/logout", headers=owner.headers).status_code == 200


def test_revocations_count_per_session_against_their_own_limit(limited: LiveServer) -> None:
    api = Api(limited.url)
    email = api.register()
    session = api.login(email)
    sessions = api.get("/sessions", headers=session.headers).json()["items"]
    [current] = [item["id"] for item in sessions if item["current"]]
    answers = [
        api.delete(f"/sessions/not-a-session-{n}", headers=session.headers) for n in range(REVOKE)
    ]
    assert [a.status_code for a in answers] == [404] * REVOKE
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == [
        str(REVOKE - 1 - n) for n in range(REVOKE)
    ]
    refused = api.delete(f"/sessions/{current}", headers=session.headers)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # Another session of the same user has a revocation limit of its own.
    other = api.login(email)
    assert api.post("/logout", headers=other.headers).status_code == 200


def test_remaining_is_each_requests_own_count_under_concurrency(limited: LiveServer) -> None:
    api = Api(limited.url)
    tokens = api.new_user()

    def read(_: int) -> requests.Response:
        # A connection each: the reads spread over both workers and run at once.
        return requests.get(
            f"{limited.url}/tasks", headers={**tokens.headers, "Connection": "close"}, timeout=30
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(read, range(BUDGET)))
    assert [a.status_code for a in answers] == [200] * BUDGET
    remaining = sorted(int(a.headers["x-ratelimit-remaining"]) for a in answers)
    assert remaining == list(range(BUDGET))


@pytest.mark.parametrize("email", ["a~b@example.com", "x~1.2_3~y@example.com"])
def test_an_address_with_a_tilde_logs_in_and_asks_for_a_reset(
    start_server: StartServer, email: str
) -> None:
    api = Api(start_server().url)
    api.register(email)
    assert api.login(email).access_token
    wrong = api.post("/login", json={"email": email, "password": "not the password"})
    assert wrong.status_code == 401, wrong.text
    assert api.post("/password/forgot", json={"email": email}).status_code == 202


def test_a_malformed_request_is_admitted_once(limited: LiveServer) -> None:
    api = Api(limited.url)
    tokens = api.new_user()
    before = int(api.get("/tasks", headers=tokens.headers).headers["x-ratelimit-remaining"])
    bad = api.get("/tasks?limit=0", headers=tokens.headers)
    assert bad.status_code == 422
    assert bad.headers["x-ratelimit-remaining"] == str(before - 1)
    media = api.post("/tasks", data="title=x", headers=tokens.headers)
    assert media.status_code == 415
    assert media.headers["x-ratelimit-remaining"] == str(before - 2)


def test_a_malformed_request_without_a_session_gets_the_401_first(limited: LiveServer) -> None:
    api = Api(limited.url)
    deep = "[" * 5000 + "]" * 5000
    for response in (
        api.get("/tasks?limit=0"),
        api.post("/tasks", data="title=x"),
        api.post("/tasks", data=deep, headers={"Content-Type": "application/json"}),
        api.post("/tasks", data=b"\xff\xfe{}", headers={"Content-Type": "application/json"}),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["x-ratelimit-limit"] == str(BUDGET)


def test_a_public_route_keys_a_live_token_by_its_user(limited: LiveServer) -> None:
    api = Api(limited.url)
    email = api.register()
    tokens = api.login(email)
    answer = api.post("/login", json={"email": email, "password": PASSWORD}, headers=tokens.headers)
    assert answer.status_code == 200
    # The login spent the user's budget, not the address's.
    after = api.get("/tasks", headers=tokens.headers)
    assert after.headers["x-ratelimit-remaining"] == str(BUDGET - 2)


@pytest.mark.parametrize(
    "path",
    ["/nowhere", "/tasks/12/nothing", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css"],
)
def test_a_request_no_api_route_takes_spends_the_budget_too(limited: LiveServer, path: str) -> None:
    api = Api(limited.url)
    answers = [api.get(path) for _ in range(BUDGET)]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {str(BUDGET)}
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == list(
        range(BUDGET - 1, -1, -1)
    )
    refused = api.get(path)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    assert int(refused.headers["retry-after"]) >= 1
    # Probes and the operator's scrapes are never refused for it.
    assert api.get("/health/live").status_code == 200
    assert api.get("/health/ready").status_code == 200


def test_a_method_a_path_does_not_take_spends_the_budget(limited: LiveServer) -> None:
    api = Api(limited.url)
    answer = api.put("/tasks")
    assert answer.status_code == 405
    assert answer.headers["x-ratelimit-remaining"] == str(BUDGET - 1)
