"""Every protected route checks the signature, the claims and the live session."""

import base64
import json
import time

import pytest
import redis
from joserfc import jwt
from joserfc.jwk import OctKey

from tests.support.api import Api, Tokens
from tests.support.live_server import TEST_JWT_SECRET

PROTECTED = [
    ("GET", "/tasks"),
    ("POST", "/tasks"),
    ("GET", "/tasks/1"),
    ("PUT", "/tasks/1"),
    ("DELETE", "/tasks/1"),
    ("POST", "/logout"),
    ("POST", "/logout/all"),
    ("GET", "/sessions"),
    ("DELETE", "/sessions/abc"),
]


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(tokens: Tokens) -> dict[str, object]:
    payload = tokens.access_token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def _sign(claims: dict[str, object], secret: str = TEST_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode({"alg": alg}, claims, OctKey.import_key(secret.encode()), algorithms=[alg])


def assert_unauthorized(
    api: Api, headers: dict[str, str], method: str = "GET", path: str = "/tasks"
) -> None:
    response = api.request(method, path, headers=headers, json={"title": "x"})
    assert response.status_code == 401, (method, path, response.text)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_routes_need_a_token(api: Api, method: str, path: str) -> None:
    assert_unauthorized(api, {}, method, path)


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Token abc"],
)
def test_malformed_authorization_is_401(api: Api, header: str) -> None:
    assert_unauthorized(api, {"Authorization": header})


def test_claims_carry_the_session(api: Api) -> None:
    claims = _claims(api.new_user())
    assert {"sub", "sid", "jti", "iat", "exp", "iss", "aud"} <= set(claims)
    assert claims["exp"] == claims["iat"] + 900  # type: ignore[operator]


def test_alg_none_is_rejected(api: Api) -> None:
    tokens = api.new_user()
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(tokens))}."
    assert_unauthorized(api, {"Authorization": f"Bearer {unsigned}"})


def test_other_hmac_algorithm_is_rejected(api: Api) -> None:
    tokens = api.new_user()
    forged = _sign(_claims(tokens), alg="HS512")
    assert_unauthorized(api, {"Authorization": f"Bearer {forged}"})


def test_wrongly_signed_token_is_rejected(api: Api) -> None:
    tokens = api.new_user()
    forged = _sign(_claims(tokens), secret="another-secret-" + "y" * 40)
    assert_unauthorized(api, {"Authorization": f"Bearer {forged}"})


def test_tampered_payload_is_rejected(api: Api) -> None:
    tokens = api.new_user()
    header, _, signature = tokens.access_token.split(".")
    claims = {**_claims(tokens), "sub": "999999"}
    assert_unauthorized(api, {"Authorization": f"Bearer {header}.{_b64(claims)}.{signature}"})


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"exp": int(time.time()) - 10},
        {"sid": None},
        {"jti": None},
    ],
)
def test_bad_claims_are_rejected_even_when_validly_signed(
    api: Api, change: dict[str, object]
) -> None:
    tokens = api.new_user()
    claims = {**_claims(tokens), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    assert_unauthorized(api, {"Authorization": f"Bearer {_sign(claims)}"})


def test_valid_token_whose_session_was_deleted_is_rejected(api: Api, redis_url: str) -> None:
    tokens = api.new_user()
    assert api.get("/tasks", headers=tokens.headers).ok
    claims = _claims(tokens)
    client = redis.Redis.from_url(redis_url)
    assert client.delete(f"session:{{u:{claims['sub']}}}:{claims['sid']}") == 1
    assert_unauthorized(api, tokens.headers)


def test_validly_signed_token_with_another_jti_is_rejected(api: Api) -> None:
    tokens = api.new_user()
    claims = {**_claims(tokens), "jti": "not-the-current-one"}
    assert_unauthorized(api, {"Authorization": f"Bearer {_sign(claims)}"})


def test_logout_revokes_the_token_on_the_next_request(api: Api) -> None:
    email = api.register()
    tokens, other = api.login(email), api.login(email)
    response = api.post("/logout", headers=tokens.headers)
    assert response.status_code == 200
    assert "detail" in response.json()
    assert_unauthorized(api, tokens.headers)
    assert api.post("/logout", headers=tokens.headers).status_code == 401
    # The same user's other session is untouched.
    assert api.get("/tasks", headers=other.headers).ok


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tasks", {"title": ""}),
        ("PUT", "/tasks/not-a-number", {"title": "x"}),
        ("GET", "/tasks?limit=0", None),
        ("DELETE", "/sessions/bad%20id", None),
    ],
)
def test_invalid_input_without_a_token_is_401_not_422(
    api: Api, method: str, path: str, body: dict[str, object] | None
) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_invalid_input_with_a_token_is_422(api: Api) -> None:
    tokens = api.new_user()
    assert api.get("/tasks?limit=0", headers=tokens.headers).status_code == 422
    raw = {**tokens.headers, "Content-Type": "application/json"}
    assert api.post("/tasks", data=b"\xff\xfe", headers=raw).status_code == 422


def test_every_token_that_does_not_let_in_gets_one_and_the_same_401(api: Api) -> None:
    # docs/api.md: the same 401, literally, whatever is wrong with a token; a different
    # text only when no bearer token came at all (the client knows that much already).
    tokens, revoked = api.new_user(), api.new_user()
    assert api.post("/logout", headers=revoked.headers).ok
    claims = _claims(tokens)
    bad_tokens = [
        "not-a-jwt",
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        _sign(claims, secret="another-secret-" + "y" * 40),
        _sign({**claims, "exp": int(time.time()) - 10}),
        _sign({**claims, "jti": "not-the-current-one"}),
        revoked.access_token,
    ]
    bodies = {api.get("/tasks", headers={"Authorization": f"Bearer {t}"}).text for t in bad_tokens}
    assert [json.loads(body) for body in bodies] == [{"detail": "Invalid or expired token"}]
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        assert api.get("/tasks", headers=headers).json() == {"detail": "Not authenticated"}
