"""The command-line tools the deploy tests need, found or installed.

kubectl (with its built-in kustomize) and promtool come from the machine (the machine image
has kubectl; Debian's `prometheus` package has promtool, which .ci/run installs). Where one
is missing its tests are skipped, unless STACK_TESTS=required (set by .ci/run and the CI
workflow): then it is a failure. checkov gets a venv of its own (tests/deploy/checkov.in says
why; tests/support/tool_venv.py installs it).
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.support.live_server import ROOT
from tests.support.tool_venv import tool_venv

CHECKOV_LOCK = ROOT / "tests" / "deploy" / "checkov.lock"


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
    return tool_venv("checkov", CHECKOV_LOCK) / "bin" / "checkov"
