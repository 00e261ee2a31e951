"""pyproject.toml declares the direct dependencies; the two locks pin them, and every
package under them, with hashes (scripts/lock.sh writes both)."""

import hashlib
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.live_server import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


def locked(name: str) -> dict[str, str]:
    """{package: version} of a lock, every entry checked to carry at least one hash."""
    versions: dict[str, str] = {}
    entries = re.split(r"\n(?=\S)", (ROOT / name).read_text())
    for entry in entries:
        match = PIN.match(entry)
        if match is None:
            assert entry.startswith("#") or not entry.strip(), f"{name}: {entry[:80]!r}"
            continue
        assert "--hash=sha256:" in entry, f"{name}: {match[1]} has no hash"
        versions[canonicalize_name(match[1])] = match[2]
    return versions


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(line) for line in project["dependencies"]]
    dev = [Requirement(line) for line in project["optional-dependencies"]["dev"]]
    return runtime, dev


def unmet(requirements: list[Requirement], lock: dict[str, str]) -> list[str]:
    return [
        str(requirement)
        for requirement in requirements
        if not requirement.specifier.contains(
            lock.get(canonicalize_name(requirement.name), "0.0.0.dev0"), prereleases=True
        )
    ]


def test_the_locks_pin_every_declared_dependency_within_its_range() -> None:
    runtime, dev = declared()
    runtime_lock, dev_lock = locked("requirements.txt"), locked("requirements-dev.lock")
    assert unmet(runtime, runtime_lock) == [], "run ./scripts/lock.sh"
    assert unmet(runtime + dev, dev_lock) == [], "run ./scripts/lock.sh"


def test_the_dev_lock_runs_the_runtime_lock_s_versions() -> None:
    runtime_lock, dev_lock = locked("requirements.txt"), locked("requirements-dev.lock")
    assert {name: dev_lock.get(name) for name in runtime_lock} == runtime_lock


def test_one_list_of_dependencies() -> None:
    # The old unhashed lists would drift from pyproject.toml.
    assert not list(ROOT.glob("requirements*.txt"))


def test_the_venv_holds_the_current_dev_lock() -> None:
    # scripts/venv.sh stamps the hash of the lock it installed, and installs again when the
    # lock's hash differs: a changed lock is never left uninstalled by scripts/test.sh.
    stamp = ROOT / ".venv" / ".requirements.sha"
    wanted = hashlib.sha256((ROOT / "requirements-dev.lock").read_bytes()).hexdigest()
    assert stamp.read_text().strip() == wanted, "run ./scripts/venv.sh"
