"""HTTP from the tests to a running stack: through the published proxy port, or from inside
one api replica (`docker compose exec`), which reaches that replica alone."""

import json
import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.stack.compose import Stack

# Runs inside an api container, whose image has no curl: METHOD PATH [TOKEN] -> "STATUS".
REQUEST_IN_CONTAINER = """
import sys, urllib.error, urllib.request
method, path, token = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
headers = {"Authorization": f"Bearer {token}"} if token else {}
request = urllib.request.Request("http://127.0.0.1:8000" + path, method=method, headers=headers)
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


@dataclass
class User:
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_user() -> User:
    return User(f"{uuid.uuid4().hex[:12]}@example.com", "correct horse battery staple")


def check_response(response: requests.Response, status: int) -> Any:
    """The contract every response keeps: the status, a JSON body, an X-Request-ID."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers.get("X-Request-ID"), dict(response.headers)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict | list)
    return body


def register_and_login(url: str, user: User | None = None) -> User:
    user = user or new_user()
    credentials = {"email": user.email, "password": user.password}
    check_response(requests.post(f"{url}/register", json=credentials, timeout=30), 201)
    return login(url, user)


def login(url: str, user: User) -> User:
    credentials = {"email": user.email, "password": user.password}
    tokens = check_response(requests.post(f"{url}/login", json=credentials, timeout=30), 200)
    assert isinstance(tokens, dict)
    assert tokens["token_type"] == "bearer" and int(str(tokens["expires_in"])) > 0
    user.access_token = str(tokens["access_token"])
    user.refresh_token = str(tokens["refresh_token"])
    return user


def status_in_replica(stack: Stack, index: int, method: str, path: str, token: str = "") -> int:
    args = [method, path, *([token] if token else [])]
    result = stack.exec("api", "python", "-c", REQUEST_IN_CONTAINER, *args, index=index)
    assert result.returncode == 0, result.stdout + result.stderr
    return int(result.stdout.strip())


def open_socket(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port  # only ever this machine
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line parsed as one JSON object; any other line fails the test with it."""
    parsed = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(value, dict), f"line {number} is not a JSON object: {line!r}"
        parsed.append(value)
    return parsed
