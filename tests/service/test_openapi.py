"""Operation ids are the route functions' names, unique, so that a client generated from
/openapi.json keeps its method names; and such a client works against a live server."""

import importlib
import inspect
import os
import subprocess
import sys
import typing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from service.config import Settings
from service.main import create_app
from tests.support.api import PASSWORD, Api, unique_email
from tests.support.live_server import LiveServer

VENV_BIN = Path(sys.executable).parent
CLIENT_PACKAGE = "tasks_api_client"


def operation_ids(spec: dict[str, Any]) -> list[str]:
    return [
        operation["operationId"] for item in spec["paths"].values() for operation in item.values()
    ]


def test_each_operation_id_is_its_route_function_s_name(base_env: dict[str, str]) -> None:
    settings = Settings(**{key.lower(): value for key, value in base_env.items()})  # type: ignore[arg-type]
    app = create_app(settings)
    spec = app.openapi()
    functions = {
        (method, context.path): inspect.unwrap(route.endpoint).__name__
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    documented = {
        (method.upper(), path): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert documented == functions
    assert {"create_task", "list_tasks", "login", "logout", "list_sessions"} <= set(
        documented.values()
    )


def test_operation_ids_are_unique(api: Api) -> None:
    ids = operation_ids(api.get("/openapi.json").json())
    assert [name for name, count in Counter(ids).items() if count > 1] == []


@pytest.fixture
def client_module(api: Api, tmp_path: Path) -> Iterator[ModuleType]:
    spec = tmp_path / "openapi.json"
    spec.write_bytes(api.get("/openapi.json").content)
    config = tmp_path / "config.yml"
    config.write_text(f"package_name_override: {CLIENT_PACKAGE}\n")
    output = tmp_path / CLIENT_PACKAGE  # --meta none: the package itself, nothing around it
    result = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec),
            "--config", str(config), "--output-path", str(output), "--meta", "none",
            "--fail-on-warning",
        ],
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.partition(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def body_of(operation: Any) -> Any:
    """The model class an operation takes as its body, whatever the schema calls it."""
    return typing.get_type_hints(operation.sync_detailed)["body"]


def test_a_generated_client_drives_the_api(server: LiveServer, client_module: ModuleType) -> None:
    def operation(name: str) -> Any:
        return importlib.import_module(f"{CLIENT_PACKAGE}.api.{name}")

    register, login = operation("auth.register"), operation("auth.login")
    create_task, list_tasks = operation("tasks.create_task"), operation("tasks.list_tasks")
    logout = operation("account.logout")
    anonymous = client_module.Client(base_url=server.url, raise_on_unexpected_status=True)
    email = unique_email("generated")
    credentials = {"email": email, "password": PASSWORD}
    registered = register.sync_detailed(client=anonymous, body=body_of(register)(**credentials))
    assert registered.status_code == 201
    tokens = login.sync(client=anonymous, body=body_of(login)(**credentials))
    client = client_module.AuthenticatedClient(
        base_url=server.url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    created = create_task.sync(client=client, body=body_of(create_task)(title="generated"))
    assert created.title == "generated"
    page = list_tasks.sync(client=client)
    assert [task.id for task in page.items] == [created.id]
    assert logout.sync_detailed(client=client).status_code == 200
    # The session is gone: the same token is refused now.
    stale = client_module.AuthenticatedClient(base_url=server.url, token=tokens.access_token)
    assert list_tasks.sync_detailed(client=stale).status_code == 401
