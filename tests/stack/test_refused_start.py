"""A configuration the service refuses (APP_ENV=production with the example JWT_SECRET):
the api exits 2 with a message naming the problem, is retried as often as its restart
policy says, and then stays stopped instead of restarting in a loop."""

import time
from pathlib import Path

import pytest

from service.config import EXAMPLE_JWT_SECRET
from tests.stack.client import json_lines
from tests.stack.compose import Stack
from tests.stack.conftest import project_name

RETRIES = 5  # restart: on-failure:5 in docker-compose.yml


def test_a_refused_start_stops_after_the_retries(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    stack = Stack(
        project_name("refused"),
        {**stack_env, "APP_ENV": "production"},
        Path(tmp_path_factory.mktemp("refused")),
    )
    try:
        # The api alone: the settings are refused before PostgreSQL or Redis is needed.
        stack.compose("up", "--detach", "--no-deps", "api", timeout=600)
        stack.note_built_image()
        (api,) = stack.container_ids("api")
        deadline = time.monotonic() + 120
        state = stack.inspect(api)
        while time.monotonic() < deadline:
            state = stack.inspect(api)
            if state["State"]["Status"] == "exited" and state["RestartCount"] == RETRIES:
                break
            time.sleep(0.5)
        time.sleep(5)  # and it stays so
        state = stack.inspect(api)
        assert state["State"]["Status"] == "exited", state["State"]
        assert (state["State"]["ExitCode"], state["RestartCount"]) == (2, RETRIES)
        assert "Exited (2)" in stack.compose("ps", "--all", "api").stdout

        ((stdout, stderr),) = stack.streams("api")
        refusals = [line for line in json_lines(stdout) if line["event"] == "config_invalid"]
        assert len(refusals) == RETRIES + 1, stdout
        assert all(line["level"] == "error" and line["exit_status"] == 2 for line in refusals)
        assert "JWT_SECRET is the example value" in str(refusals[0]["message"])
        assert EXAMPLE_JWT_SECRET not in stdout + stderr
    finally:
        stack.down()
