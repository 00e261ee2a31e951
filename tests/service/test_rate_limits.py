"""Rate limits on the real Redis, shared by every worker."""

import concurrent.futures
import time

import pytest
import redis
import requests

from tests.conftest import StartServer
from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import LiveServer, free_port


@pytest.fixture(scope="module")
def two_workers(start_server: StartServer) -> LiveServer:
    return start_server(
        workers=2,
        RATE_LIMIT="100/minute",
        LOGIN_RATE_LIMIT="10/minute",
        REGISTER_RATE_LIMIT="1000/hour",
    )


@pytest.fixture(autouse=True)
def fresh_budgets(redis_url: str) -> None:
    """Every test here shares 127.0.0.1; start each with no rate-limit counter."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("LIMITS:*"):
        client.delete(key)


def test_the_101st_request_of_a_client_gets_429_across_two_workers(two_workers: LiveServer) -> None:
    url = f"{two_workers.url}/tasks"

    def anonymous_request(_: int) -> requests.Response:
        # A new connection each time, so the requests spread over both workers.
        return requests.get(url, timeout=30, headers={"Connection": "close"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(anonymous_request, range(100)))
    assert [r.status_code for r in responses] == [401] * 100
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses)
    assert remaining == list(range(100))  # one counter, whichever worker answered

    over = anonymous_request(0)
    assert over.status_code == 429
    assert over.headers["content-type"] == "application/json"
    assert "detail" in over.json()
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert over.headers["x-ratelimit-limit"] == "100"
    assert over.headers["x-ratelimit-remaining"] == "0"
    assert int(over.headers["x-ratelimit-reset"]) >= int(time.time())


def test_an_authenticated_user_has_a_budget_of_their_own(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    alice, bob = api.new_user(), api.new_user()
    for _ in range(100):
        assert api.get("/tasks", headers=alice.headers).status_code == 200
    limited = api.get("/tasks", headers=alice.headers)
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    # Another user from the same IP is unaffected.
    response = api.get("/tasks", headers=bob.headers)
    assert response.status_code == 200
    assert int(response.headers["x-ratelimit-remaining"]) == 99


def test_the_budget_is_one_across_all_endpoints(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    tokens = api.new_user()
    task = api.create_task(tokens)
    for i in range(99):
        path = "/tasks" if i % 3 else f"/tasks/{task['id']}"
        response = api.get(path, headers=tokens.headers)
        assert response.status_code == 200
    assert api.get("/sessions", headers=tokens.headers).status_code == 429


def test_health_endpoints_are_exempt(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    for _ in range(120):
        assert api.get("/health/live").status_code == 200
    assert api.get("/health/ready").status_code == 200
    assert "x-ratelimit-limit" not in api.get("/health/live").headers


def test_spoofed_x_forwarded_for_does_not_reset_a_budget(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    statuses = [
        api.get("/tasks", headers={"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"}).status_code
        for i in range(101)
    ]
    assert statuses[:100] == [401] * 100
    assert statuses[100] == 429


def test_login_brute_force_is_limited_per_ip_and_email(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    victim, other = api.register(), api.register()
    statuses = [
        api.post("/login", json={"email": victim, "password": f"wrong guess {i}"}).status_code
        for i in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    # Even the right password is refused now, before any password check.
    refused = api.post("/login", json={"email": victim.upper(), "password": PASSWORD})
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    # Another email from the same IP is unaffected.
    assert api.post("/login", json={"email": other, "password": PASSWORD}).status_code == 200


def test_limited_routes_report_their_headers(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    email = api.register()
    response = api.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    # The tighter of the two limits on /login is reported: 10 per IP and email.
    assert response.headers["x-ratelimit-limit"] == "10"
    assert response.headers["x-ratelimit-remaining"] == "9"


def test_registration_is_limited_per_ip(start_server: StartServer) -> None:
    server = start_server(REGISTER_RATE_LIMIT="3/hour")
    api = Api(server.url)
    statuses = [
        api.post("/register", json={"email": unique_email(), "password": PASSWORD}).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_limited_routes_answer_503_when_the_limiter_redis_is_down(
    start_server: StartServer,
) -> None:
    api = Api(start_server(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").url)
    for method, path, body in (
        ("GET", "/tasks", None),
        ("POST", "/login", {"email": "a@example.com", "password": PASSWORD}),
        ("POST", "/register", {"email": unique_email(), "password": PASSWORD}),
    ):
        response = api.request(method, path, json=body)
        assert response.status_code == 503, (path, response.text)
        assert response.headers["content-type"] == "application/json"


def test_invalid_requests_count_against_the_budget(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    tokens = api.new_user()
    statuses = [api.get("/tasks?limit=0", headers=tokens.headers).status_code for _ in range(100)]
    assert statuses == [422] * 100
    assert api.get("/tasks", headers=tokens.headers).status_code == 429
