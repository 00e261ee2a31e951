"""Protection is the default: every route the app serves needs a live session, except
the public ones listed here (and in service.main, deliberately twice)."""

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from service.config import Settings
from service.main import create_app
from tests.support.api import Api
from tests.support.live_server import LiveServer

PUBLIC = {
    ("POST", "/register"),
    ("POST", "/login"),
    ("POST", "/login/mfa"),  # the mfa_token of /login's first half, not a session
    ("POST", "/refresh"),
    ("POST", "/password/forgot"),
    ("POST", "/password/reset"),
    ("POST", "/email/verify"),
    ("POST", "/email/verify/resend"),
    # Signing in with a provider: the browser has no session yet.
    ("GET", "/oidc/providers"),
    ("GET", "/oidc/{name}/authorize"),
    ("GET", "/oidc/{name}/callback"),
    ("POST", "/oidc/token"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),  # its own token (METRICS_TOKEN), not a session
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
# Mounted apps answer without a route of their own: the docs' static scripts and styles.
PUBLIC_MOUNTS = {"/docs/assets"}


def build_app(base_env: dict[str, str]) -> FastAPI:
    settings = Settings(**{key.lower(): value for key, value in base_env.items()})  # type: ignore[arg-type]
    return create_app(settings)


def served_operations(base_env: dict[str, str]) -> set[tuple[str, str]]:
    app = build_app(base_env)
    operations: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD" and route.path is not None:
                operations.add((method, route.path))
    return operations


@pytest.fixture(scope="module")
def operations(base_env: dict[str, str]) -> set[tuple[str, str]]:
    return served_operations(base_env)


def test_the_public_routes_are_the_only_ones_without_protection(
    operations: set[tuple[str, str]], server: LiveServer
) -> None:
    api = Api(server.url)
    assert operations >= PUBLIC
    for method, path in sorted(operations - PUBLIC):
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        response = api.request(method, concrete, json={"title": "x"})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        # A token that verifies but names no live session is no better than none.
        dead = api.new_user()
        assert api.post("/logout", headers=dead.headers).status_code == 200
        response = api.request(method, concrete, json={"title": "x"}, headers=dead.headers)
        assert response.status_code == 401, (method, path, response.text)


def test_openapi_marks_exactly_the_protected_operations(
    operations: set[tuple[str, str]], api: Api
) -> None:
    spec = api.get("/openapi.json").json()
    marked = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    }
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert marked == documented - PUBLIC
    assert marked == {op for op in operations - PUBLIC if op in documented}


def test_the_only_mount_is_the_docs_assets(base_env: dict[str, str]) -> None:
    app = build_app(base_env)
    mounts = {route.path for route in app.routes if isinstance(route, Mount)}
    assert mounts == PUBLIC_MOUNTS
