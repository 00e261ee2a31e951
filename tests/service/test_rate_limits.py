"""Rate limits on the real Redis, shared by every worker."""

import base64
import concurrent.futures
import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import redis
import requests

from tests.support.api import PASSWORD, Api, Tokens, unique_email
from tests.support.live_server import LiveServer, StartServer


def _claims(tokens: Tokens) -> dict[str, str]:
    payload = tokens.access_token.split(".")[1]
    claims: dict[str, str] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


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


def test_invalid_requests_count_against_the_budget(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    tokens = api.new_user()
    statuses = [api.get("/tasks?limit=0", headers=tokens.headers).status_code for _ in range(100)]
    assert statuses == [422] * 100
    assert api.get("/tasks", headers=tokens.headers).status_code == 429


def _post_from(ip: str, url: str, path: str, body: dict[str, str]) -> int:
    """POST from another loopback address: another client, as the server sees it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(ip, 0)
    )
    try:
        connection.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_counters_are_slowapis_own(two_workers: LiveServer, redis_url: str) -> None:
    api = Api(two_workers.url)
    tokens = api.new_user()
    user_id = _claims(tokens)["sub"]
    assert api.get("/tasks", headers=tokens.headers).status_code == 200
    # limits' fixed window keys, under SlowAPI's shared-limit scope: the Limiter counted.
    key = f"LIMITS:LIMITER/user:{user_id}/budget/100/1/minute"
    assert redis.Redis.from_url(redis_url).get(key) == b"1"


def test_a_dead_token_does_not_spend_its_owners_budget(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    email = api.register()
    dead, live = api.login(email), api.login(email)
    assert api.post("/logout", headers=dead.headers).status_code == 200
    before = int(api.get("/tasks", headers=live.headers).headers["x-ratelimit-remaining"])
    statuses = [api.get("/tasks", headers=dead.headers).status_code for _ in range(90)]
    assert statuses == [401] * 90
    # The 90 were the IP's: the owner's live session has spent one more request, no more.
    after = api.get("/tasks", headers=live.headers)
    assert after.status_code == 200
    assert int(after.headers["x-ratelimit-remaining"]) == before - 1


def test_a_dead_token_does_not_escape_the_ip_budget(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    email = api.register()
    dead = api.login(email)
    assert api.post("/logout", headers=dead.headers).status_code == 200
    statuses = [api.get("/tasks").status_code for _ in range(100)]
    assert statuses[-1] == 429  # the IP's budget is spent
    # A login spray carrying the dead token is keyed by IP like no token: refused.
    sprayed = api.post(
        "/login", json={"email": email, "password": "a wrong guess"}, headers=dead.headers
    )
    assert sprayed.status_code == 429
    assert api.get("/tasks", headers=dead.headers).status_code == 429


def test_every_spelling_of_an_account_shares_its_login_limit(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    local = uuid.uuid4().hex[:10]
    api.register(f"strasse.{local}@example.com")
    # Spellings that are one address once canonicalised (NFKC + casefold), as the
    # account lookup sees them: each reaches the account, so each counts in its bucket.
    spellings = [f"Straße.{local}@example.com", f"STRASSE.{local}@EXAMPLE.COM"]
    statuses = [
        api.post(
            "/login", json={"email": spellings[i % 2], "password": "wrong password"}
        ).status_code
        for i in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    response = api.post(
        "/login", json={"email": f"strasse.{local}@example.com", "password": PASSWORD}
    )
    assert response.status_code == 429


def test_the_dotted_capital_i_is_its_own_address_and_its_own_bucket(
    two_workers: LiveServer,
) -> None:
    api = Api(two_workers.url)
    local = uuid.uuid4().hex[:10]
    api.register(f"ixx{local}@example.com")
    # PostgreSQL's lower("İ") is "i" and Python's is "i̇": the old lookup and the old limit
    # key disagreed. Canonically "İxx" is another address, for the lookup and the limit.
    dotted = f"\u0130xx{local}@example.com"
    statuses = [
        api.post("/login", json={"email": dotted, "password": "a wrong guess"}).status_code
        for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    assert api.post("/login", json={"email": dotted, "password": PASSWORD}).status_code == 429
    # Its guesses never reached the account, nor its limit.
    assert api.login(f"ixx{local}@example.com").access_token
    assert api.post("/register", json={"email": dotted, "password": PASSWORD}).status_code == 201


@pytest.fixture(scope="module")
def account_limited(start_server: StartServer) -> LiveServer:
    return start_server(workers=2, LOGIN_ACCOUNT_RATE_LIMIT="5/hour")


def test_failed_logins_per_account_are_limited_across_clients(
    account_limited: LiveServer,
) -> None:
    api = Api(account_limited.url)
    email = api.register()
    url = account_limited.url
    # Each guess from another client address: the per-IP limit never sees two.
    guesses = [
        _post_from(
            f"127.0.0.{10 + n}", url, "/login", {"email": email, "password": f"guess number {n}"}
        )
        for n in range(6)
    ]
    assert guesses == [401] * 5 + [429]
    # The owner, from yet another address, is refused too until the window ends; the
    # password can still be reset by email.
    assert _post_from("127.0.0.50", url, "/login", {"email": email, "password": PASSWORD}) == 429


def test_logins_from_a_known_client_do_not_count_against_the_account(
    account_limited: LiveServer,
) -> None:
    api = Api(account_limited.url)
    email = api.register()
    # The first sign-in from this address counts: the account did not know it yet.
    for _ in range(8):
        api.login(email)
    url = account_limited.url
    guesses = [
        _post_from(
            f"127.0.0.{60 + n}", url, "/login", {"email": email, "password": f"guess number {n}"}
        )
        for n in range(5)
    ]
    assert guesses == [401] * 4 + [429]
    assert api.login(email).access_token


@pytest.fixture(scope="module")
def tight_limits(start_server: StartServer) -> LiveServer:
    return start_server(
        RATE_LIMIT="100/minute", REGISTER_RATE_LIMIT="7/hour", PASSWORD_RESET_RATE_LIMIT="4/hour"
    )


def test_register_reports_the_registration_limit(tight_limits: LiveServer) -> None:
    api = Api(tight_limits.url)
    for remaining in (6, 5):
        response = api.post("/register", json={"email": unique_email(), "password": PASSWORD})
        assert response.status_code == 201
        # Not the budget's 100 per minute: the registration limit is closer to refusing.
        assert response.headers["x-ratelimit-limit"] == "7"
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
        assert int(response.headers["x-ratelimit-reset"]) > time.time() + 60


def test_forgot_reports_the_reset_limit_and_its_429_says_the_links_work(
    tight_limits: LiveServer,
) -> None:
    api = Api(tight_limits.url)
    email = unique_email()
    answers = [api.post("/password/forgot", json={"email": email}) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 4 + [429]
    assert [a.headers["x-ratelimit-limit"] for a in answers] == ["4"] * 5
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["3", "2", "1", "0", "0"]
    refused = answers[-1].json()["detail"]
    assert refused.startswith("Rate limit exceeded: 4 per 1 hour")
    assert "already mailed still work" in refused
    assert int(answers[-1].headers["retry-after"]) > 60


def test_a_login_with_a_device_token_reports_the_tighter_limit(two_workers: LiveServer) -> None:
    api = Api(two_workers.url)
    email = api.register()
    first = api.post("/login", json={"email": email, "password": PASSWORD})
    device = first.json()["device_token"]
    # From an address the account has not signed in from: the device's limit applies.
    parts = urlsplit(two_workers.url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=30, source_address=("127.0.0.77", 0)
    )
    body = {"email": email, "password": PASSWORD, "device_token": device}
    connection.request("POST", "/login", json.dumps(body), {"Content-Type": "application/json"})
    again = connection.getresponse()
    assert again.status == 200
    # 10 per IP and account (9 left after this first login from there) against the
    # device's 5 per 15 minutes (4 left).
    assert again.getheader("x-ratelimit-limit") == "5"
    assert again.getheader("x-ratelimit-remaining") == "4"
    connection.close()
