"""The command-line tools the deploy tests need, found or installed.

kubectl (with its built-in kustomize) and promtool come from the machine (the machine image
has kubectl; Debian's `prometheus` package has promtool, which .ci/run installs). Where one
is missing its tests are skipped, unless STACK_TESTS=required (set by .ci/run and the CI
workflow): then it is a failure. checkov gets a venv of its own (tests/deploy/checkov.in says
why), installed from its hashed lock the first time and whenever the lock changes.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_server import ROOT

CHECKOV_LOCK = ROOT / "tests" / "deploy" / "checkov.lock"
CHECKOV_VENV = ROOT / ".venv-tools" / "checkov"


def machine_tool(name: str, purpose: str) -> str:
    """The path of `name`, or the test is skipped (failed with STACK_TESTS=required)."""
    found = shutil.which(name)
    if found is not None:
        return found
    problem = f"{name} is not installed, so {purpose} cannot be checked"
    if os.environ.get("STACK_TESTS") == "required":
        pytest.fail(f"STACK_TESTS=required, but {problem}")
    pytest.skip(f"{problem} (install it, or set STACK_TESTS=required to make this a failure)")


def kubectl() -> str:
    return machine_tool("kubectl", "the Kubernetes manifests (kubectl kustomize)")


def promtool() -> str:
    return machine_tool("promtool", "the alerting rules (Debian package: prometheus)")


def checkov() -> Path:
    """checkov from .venv-tools/checkov, (re)installed when tests/deploy/checkov.lock changed."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    stamp = CHECKOV_VENV / ".requirements.sha"
    wanted = hashlib.sha256(CHECKOV_LOCK.read_bytes()).hexdigest()
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return binary
    shutil.rmtree(CHECKOV_VENV, ignore_errors=True)
    python = CHECKOV_VENV / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", str(CHECKOV_VENV)],
        # --no-deps: the lock lists every package; wheels only: what was hashed is what runs.
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(CHECKOV_LOCK)],
        [str(python), "-m", "pip", "check"],
    ]  # fmt: skip
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            pytest.fail(f"installing checkov failed: {' '.join(step)}\n{output}")
    stamp.write_text(wanted + "\n")
    return binary
