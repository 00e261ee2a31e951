"""Fixtures of the stack tests: the images and build secrets chosen once per run, and the
stacks themselves, each a compose project named after this run and removed with its
volumes (`down -v`) afterwards, and the api images built in this run removed at the end.

Without a Docker engine these tests are skipped, unless STACK_TESTS=required (set by
.ci/run): then the missing engine is a failure.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.compose import (
    BUILT_IMAGES,
    Stack,
    choose_images,
    docker,
    engine_problem,
    pip_build_secrets,
    running_stack,
)

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    problem = engine_problem()
    if problem is not None:
        if os.environ.get("STACK_TESTS") == "required":
            pytest.fail(f"STACK_TESTS=required, but {problem}")
        pytest.skip(f"stack tests need a Docker engine with the compose plugin: {problem}")
    secrets_dir = tmp_path_factory.mktemp("build-secrets")
    api_image = f"tasks-service-stacktest:{RUN_ID}"
    env = {
        **choose_images(),
        **pip_build_secrets(Path(secrets_dir)),
        "API_IMAGE": api_image,
        "API_ADDRESS": "127.0.0.1",
        "API_PORT": "0",  # a free port of Docker's choice: runs never collide
    }
    yield env
    docker("image", "rm", "--force", api_image, *sorted(BUILT_IMAGES), check=False)


def project_name(scenario: str) -> str:
    return f"tasks-stacktest-{RUN_ID}-{scenario}"


@pytest.fixture(scope="module")
def stack(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The default stack, started with the README's `docker compose up --build`."""
    log_dir = Path(tmp_path_factory.mktemp("stack"))
    with running_stack(project_name("main"), stack_env, log_dir) as running:
        yield running
