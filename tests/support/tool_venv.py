"""Venvs of their own for tools whose pins would clash with the service's (checkov,
Patroni): each installed from its hashed lock the first time and again whenever the lock
changes, under a file lock, so that two test runs on one machine never install at once."""

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_server import ROOT

TOOLS_DIR = ROOT / ".venv-tools"


def tool_venv(
    name: str,
    lock: Path,
    *,
    from_source: tuple[str, ...] = (),
    python: str = sys.executable,
    directory: Path = TOOLS_DIR,
) -> Path:
    """`directory`/`name`, a venv of `python` holding exactly `lock`. Wheels only, but for
    the packages in `from_source` that publish none: what was hashed is what runs."""
    venv = directory / name
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    with open(directory / f".{name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        stamp = venv / ".requirements.sha"
        wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        venv_python = str(venv / "bin" / "python")
        sources = [f"--no-binary={package}" for package in from_source]
        steps = [
            [python, "-m", "venv", str(venv)],
            # --no-deps: the lock lists every package.
            [venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--require-hashes", "--no-deps", "--only-binary=:all:", *sources, "-r", str(lock)],
            [venv_python, "-m", "pip", "check"],
        ]  # fmt: skip
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                output = result.stdout + result.stderr
                pytest.fail(f"installing {name} failed: {' '.join(step)}\n{output}")
        stamp.write_text(wanted + "\n")
    return venv
