"""The repository's own tooling: the CI workflow passes actionlint and runs the test
command against the service containers; the pre-commit hooks pass on every file."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.live_server import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
VENV_BIN = Path(sys.executable).parent
HOOKS = {"ruff check", "ruff format", "mypy", "shellcheck", "hadolint", "actionlint"}


def test_the_workflow_passes_actionlint() -> None:
    # With shellcheck, actionlint checks the shell of every `run:` step too.
    result = subprocess.run(
        [str(VENV_BIN / "actionlint"), "-shellcheck", str(VENV_BIN / "shellcheck"), str(WORKFLOW)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_workflow_tests_against_postgresql_and_redis_and_builds_the_image() -> None:
    jobs = workflow()["jobs"]
    test = jobs["test"]
    images = {name: service["image"] for name, service in test["services"].items()}
    assert images == {"postgres": "postgres:16", "redis": "redis:7"}
    assert test["env"]["TEST_DATABASE_URL"].startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    assert test["env"]["TEST_REDIS_URL"].startswith("redis://127.0.0.1:6379/")
    assert [step.get("run") for step in test["steps"]][-1] == "./scripts/test.sh"
    builds = [step.get("run", "") for step in jobs["image"]["steps"]]
    assert any(run.startswith("docker compose build") for run in builds)


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return [name for name in listed.stdout.decode().split("\0") if (ROOT / name).is_file()]


def test_the_pre_commit_hooks_pass_on_every_file(tmp_path: Path) -> None:
    # In a copy, as a new repository: a hook that rewrites a file changes nothing here.
    copy = tmp_path / "repo"
    files = tracked_files()
    for name in files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(VENV_BIN.parent)

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=copy, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout

    git("init", "--quiet")
    git("add", "--", *files)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    result = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", "--all-files", "--show-diff-on-failure"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert git("diff", "--name-only") == "", "a hook changed files"
    # Each hook found files to check: a "Skipped" one would have checked nothing.
    passed = {
        line.removesuffix("Passed").rstrip(".").strip()
        for line in result.stdout.splitlines()
        if line.endswith("Passed")
    }
    assert passed == HOOKS, result.stdout


def test_stack_tests_skip_leaves_out_the_docker_stack() -> None:
    # `STACK_TESTS=skip ./scripts/test.sh`: everything but tests/stack, which needs Docker
    # and builds images (only collected here: nothing runs).
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"],
        cwd=ROOT,
        env={**os.environ, "STACK_TESTS": "skip"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/service/") for line in collected)
    assert not [line for line in collected if line.startswith("tests/stack/")]
