"""The manifests as a cluster would get them: each kustomization rendered once per session
with `kubectl kustomize`, from a copy of deploy/k8s in which the development overlay's
git-ignored secrets.env is made from its example, with random values, as a developer would."""

import base64
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import tools
from tests.support.live_server import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("development", "production")


@dataclass(frozen=True)
class Rendered:
    name: str
    path: Path  # the rendered YAML, as `kubectl apply -k` would send it
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in self.objects if item["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [item for item in self.of_kind(kind) if item["metadata"]["name"] == name]
        return found


def development_secrets(example: str) -> str:
    password = secrets.token_urlsafe(16)
    values = {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "MFA_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgresql+psycopg2://postgres:{password}@postgresql:5432/tasks",
        "METRICS_TOKEN": secrets.token_urlsafe(24),
    }
    lines = []
    for line in example.splitlines():
        key, equals, _ = line.partition("=")
        lines.append(f"{key}={values[key]}" if equals and key in values else line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("deploy") / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
    development = copy / "overlays" / "development"
    example = (development / "secrets.env.example").read_text()
    (development / "secrets.env").write_text(development_secrets(example))
    return copy


def render(directory: Path, output: Path) -> Rendered:
    result = subprocess.run(
        [tools.kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory.name}: {result.stderr}"
    output.write_text(result.stdout)
    objects = [item for item in yaml.safe_load_all(result.stdout) if item]
    return Rendered(directory.name, output, objects)


@pytest.fixture(scope="session")
def rendered(k8s_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """base, development and production, each rendered once."""
    output = tmp_path_factory.mktemp("rendered")
    directories = {"base": k8s_tree / "base"}
    directories |= {name: k8s_tree / "overlays" / name for name in OVERLAYS}
    return {name: render(path, output / f"{name}.yaml") for name, path in directories.items()}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, Rendered]) -> Iterator[Rendered]:
    yield rendered[request.param]
