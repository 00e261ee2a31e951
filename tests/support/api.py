"""A small HTTP client for the tests: requests against a live server."""

import uuid
from dataclasses import dataclass
from typing import Any

import requests

PASSWORD = "correct horse battery"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Tokens:
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def register(self, email: str | None = None, password: str = PASSWORD) -> str:
        email = email or unique_email()
        response = self.post("/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        return email

    def login(self, email: str, password: str = PASSWORD, **kwargs: Any) -> Tokens:
        response = self.post("/login", json={"email": email, "password": password}, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        return Tokens(body["access_token"], body["refresh_token"])

    def new_user(self) -> Tokens:
        return self.login(self.register())

    def create_task(self, tokens: Tokens, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", "a task")
        response = self.post("/tasks", json=fields, headers=tokens.headers)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body
