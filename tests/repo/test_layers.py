"""The directions imports may take (docs/design.md): the domain never reaches the HTTP edge,
rate limiting never reaches back into the edge, and db/ and sessions/ stand alone."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> modules it must never import (by prefix)
FORBIDDEN = {
    "service/services": ("service.edge", "fastapi", "starlette", "slowapi", "service.limits"),
    "service/limits": ("service.edge", "sqlalchemy", "db."),
    "db": ("service", "sessions", "fastapi", "starlette"),
    "sessions": ("service", "fastapi", "starlette"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_in_its_direction(package: str) -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        for name in _imports(path)
        if name.startswith(FORBIDDEN[package])
    }
    assert not offending, sorted(offending)


def test_no_module_of_the_request_path_is_named_by_a_step_number() -> None:
    assert not [p.name for p in (ROOT / "service").rglob("step*_*.py")]


def test_slowapi_is_used_through_its_public_surface_and_limits_run_no_sql() -> None:
    sources = {
        path: path.read_text()
        for package in ("service", "sessions", "db")
        for path in (ROOT / package).rglob("*.py")
    }
    assert not [p for p, text in sources.items() if "_rate_limiting_complete" in text]
    assert not [p for p, text in sources.items() if "__signature__ =" in text]
    limits = [p for p in sources if p.is_relative_to(ROOT / "service" / "limits")]
    assert not [p for p in limits if {"sqlalchemy", "db"} & {n.split(".")[0] for n in _imports(p)}]
