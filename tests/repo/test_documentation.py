"""The repository explains itself: its documents link only to files inside it, and each
link resolves."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_nothing_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|/work/shared")
    pointing = [
        str(path.relative_to(ROOT))
        for path in tracked_files()
        if path.is_file()
        and outside.search(path.read_text(errors="ignore"))
        and path.name != "test_documentation.py"
    ]
    assert pointing == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md":
            headings = {
                re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in path.read_text().splitlines()
                if line.startswith("#")
            }
            if anchor not in headings:
                broken.append(target)
    assert broken == []


def test_the_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines() == ["docker compose up --build", "./scripts/test.sh"]


# A log call with a literal event name: `log.info("session_created", ...)`, `log().error(`.
LOG_EVENT = re.compile(r"\.(?:debug|info|warning|error|exception)\(\s*\"([a-z][a-z0-9_]*)\"")


def test_every_event_the_code_logs_is_documented() -> None:
    logged = {
        event
        for folder in ("service", "sessions", "db", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        for event in LOG_EVENT.findall(path.read_text())
    }
    operations = (ROOT / "docs" / "operations.md").read_text()
    logs = operations[operations.index("## Logs") : operations.index("## Metrics")]
    # Named whole, or by a family written with `*` (`migration_*`).
    families = [name[:-1] for name in re.findall(r"`([a-z_]+\*)`", logs)]
    undocumented = sorted(
        event
        for event in logged
        if f"`{event}`" not in logs and not any(event.startswith(f) for f in families)
    )
    assert len(logged) > 20  # the pattern still finds them
    assert undocumented == []
