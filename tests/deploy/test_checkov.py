"""checkov on each overlay as rendered (one run per overlay): no failed check, and no skip
but the deliberate ones, each with its reason in the manifest (and a comment beside it,
which test_manifests checks). checkov runs from its own venv (tests/deploy/tools.py), with
--skip-download: nothing is fetched from its vendor's platform."""

import json
import os
import subprocess
from typing import Any

import pytest

from tests.deploy import tools
from tests.deploy.conftest import OVERLAYS, Rendered

DELIBERATE = {
    # The service (service/config.py) and Alembic (db/settings.py) read their secrets from
    # environment variables only.
    ("CKV_K8S_35", "Deployment", "tasks-service"),
    ("CKV_K8S_35", "Job", "tasks-service-migrate"),
}
DEVELOPMENT_ONLY = {
    # The api image is built on the developer's machine and loaded into the cluster: a tag,
    # no registry digest, never pulled. PostgreSQL and Redis: the official images by tag.
    ("CKV_K8S_43", "Deployment", "tasks-service"),
    ("CKV_K8S_15", "Deployment", "tasks-service"),
    ("CKV_K8S_43", "Job", "tasks-service-migrate"),
    ("CKV_K8S_15", "Job", "tasks-service-migrate"),
    ("CKV_K8S_43", "StatefulSet", "postgresql"),
    ("CKV_K8S_43", "StatefulSet", "redis"),
}


@pytest.fixture(scope="module", params=OVERLAYS)
def report(
    request: pytest.FixtureRequest,
    rendered: dict[str, Rendered],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Rendered, dict[str, Any]]:
    overlay = rendered[request.param]
    workdir = tmp_path_factory.mktemp(f"checkov-{overlay.name}")
    result = subprocess.run(
        [str(tools.checkov()), "--file", str(overlay.path), "--framework", "kubernetes",
         "--skip-download", "--output", "json"],
        cwd=workdir,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: a check failed
    loaded = json.loads(result.stdout)
    assert isinstance(loaded, dict) and loaded["check_type"] == "kubernetes", result.stdout[:500]
    return overlay, loaded


def resource(check: dict[str, Any]) -> tuple[str, str, str]:
    kind, _namespace, name = check["resource"].split(".", 2)
    return check["check_id"], kind, name


def test_checkov_finds_no_failed_check(report: tuple[Rendered, dict[str, Any]]) -> None:
    overlay, loaded = report
    summary = loaded["summary"]
    assert summary["parsing_errors"] == 0
    # Every object, and each container once more (checkov checks containers on their own).
    assert summary["resource_count"] >= len(overlay.objects)
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in loaded["results"]["failed_checks"]
    ]
    assert failed == []
    passed = {resource(check)[1] for check in loaded["results"]["passed_checks"]}
    assert {"Deployment", "Job", "Ingress"} <= passed


def test_checkov_skips_only_the_deliberate_checks(report: tuple[Rendered, dict[str, Any]]) -> None:
    overlay, loaded = report
    skipped = loaded["results"]["skipped_checks"]
    expected = DELIBERATE | (DEVELOPMENT_ONLY if overlay.name == "development" else set())
    assert {resource(check) for check in skipped} == expected
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"].split()) >= 4, check["resource"]
