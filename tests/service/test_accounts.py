"""Registration and login, through HTTP."""

import concurrent.futures
import statistics
import time

import requests

from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import StartServer


def test_register_returns_the_public_user(api: Api) -> None:
    email = unique_email()
    response = api.post("/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "created_at"}
    assert body["email"] == email
    assert isinstance(body["id"], int)
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert PASSWORD not in response.text


def test_register_duplicate_email_is_409_whatever_the_case(api: Api) -> None:
    email = api.register()
    response = api.post("/register", json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 409
    assert response.json() == {"detail": "An account with this email already exists"}


def test_register_rejects_bad_input_without_echoing_the_password(api: Api) -> None:
    cases = [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": unique_email(), "password": "short7!"},
        {"email": unique_email(), "password": "p" * 129},
        {"email": unique_email()},
        {"password": PASSWORD},
    ]
    for body in cases:
        response = api.post("/register", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/json"
        detail = response.json()["detail"]
        assert all("input" not in error for error in detail)
        if "password" in body:
            assert body["password"] not in response.text


def test_an_email_whose_canonical_form_outgrows_the_column_is_a_422(api: Api) -> None:
    # U+FDFA is one character that NFKC expands to eighteen: eighteen of them make a valid
    # local part (54 bytes of UTF-8) whose canonical form is longer than any address.
    email = "\ufdfa" * 18 + "@example.com"
    response = api.post("/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "email"]
    assert "too long" in error["msg"]
    # Short enough once canonical: served like any other address.
    assert api.post("/register", json={"email": "\ufdfa" + unique_email(), "password": PASSWORD}).ok


def test_password_length_bounds_are_inclusive(api: Api) -> None:
    assert api.post("/register", json={"email": unique_email(), "password": "pq" * 4}).ok
    assert api.post("/register", json={"email": unique_email(), "password": "pq" * 64}).ok
    too_long = api.post("/register", json={"email": unique_email(), "password": "pq" * 64 + "r"})
    assert too_long.status_code == 422


def test_login_returns_a_token_pair_that_is_not_cached(api: Api) -> None:
    email = api.register()
    response = api.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token", "refresh_token", "token_type", "expires_in", "device_token"
    }  # fmt: skip
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert response.headers["cache-control"] == "no-store"


def test_login_email_is_case_insensitive(api: Api) -> None:
    email = api.register()
    assert api.post("/login", json={"email": email.upper(), "password": PASSWORD}).ok


def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    email = api.register()
    wrong = api.post("/login", json={"email": email, "password": "wrong password"})
    unknown = api.post("/login", json={"email": unique_email(), "password": "wrong password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Invalid email or password"}


def test_unknown_email_takes_about_as_long_as_a_wrong_password(api: Api) -> None:
    email = api.register()

    def median_seconds(login_email: str) -> float:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            api.post("/login", json={"email": login_email, "password": "wrong password"})
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    known, unknown = median_seconds(email), median_seconds(unique_email())
    # Both pay for one argon2id verification; without the dummy hash the unknown
    # email would answer several times faster.
    assert unknown > known * 0.5
    assert known > unknown * 0.5


def test_each_login_starts_its_own_session(api: Api) -> None:
    email = api.register()
    first, second = api.login(email), api.login(email)
    assert first.access_token != second.access_token
    assert api.get("/tasks", headers=first.headers).ok
    assert api.get("/tasks", headers=second.headers).ok


def test_a_login_storm_does_not_hold_up_reads(start_server: StartServer) -> None:
    # Two request threads and one hashing slot: the logins queue for the slot without
    # taking the threads that the reads need.
    server = start_server(THREAD_POOL_SIZE="2", PASSWORD_HASH_CONCURRENCY="1")
    api = Api(server.url)
    tokens = api.new_user()
    email = api.register()
    storm = 24

    def login(_: int) -> int:
        body = {"email": email, "password": PASSWORD}
        return requests.post(f"{server.url}/login", json=body, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(storm) as pool:
        storm_started = time.perf_counter()
        futures = [pool.submit(login, n) for n in range(storm)]
        time.sleep(0.2)
        read_started = time.perf_counter()
        read = api.get("/tasks", headers=tokens.headers)
        read_seconds = time.perf_counter() - read_started
        statuses = [future.result() for future in futures]
        storm_seconds = time.perf_counter() - storm_started

    assert read.status_code == 200
    assert statuses == [200] * storm
    # One hash at a time: the storm takes storm x hash time; the read waits for none of it.
    assert read_seconds < storm_seconds / 4, (read_seconds, storm_seconds)
