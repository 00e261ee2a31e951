"""Real uvicorn processes for the tests, on free loopback ports."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_JWT_SECRET = "test-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(
        self, env: dict[str, str], *, workers: int = 1, log_path: Path, port: int | None = None
    ) -> None:
        # A port chosen beforehand, when the environment must name the server's own URL
        # (PUBLIC_BASE_URL, registered at an OpenID Provider before the server starts).
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (kept open for the server's life)
        command = [
            sys.executable, "-m", "uvicorn", "service.main:app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(workers), "--no-proxy-headers",
            "--http", "service.edge.protocol:EdgeHttpProtocol", "--ws", "none",
            "--timeout-graceful-shutdown", "10",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=self._log
        )
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.logs()}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.logs()}")

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/health/live", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False  # not listening yet, or a worker still starting

    def logs(self) -> str:
        """The server's output so far, in whole lines while it runs.

        A read can land while a worker is still writing a line (the CI run that found this read
        a line cut short); the unfinished line is left for the next read, so a test parsing
        lines never sees half of one.
        """
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace")
        if self.process.poll() is None:
            return text[: text.rfind("\n") + 1]
        return text

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


# The `start_server` fixture: start a live server with extra environment variables.
StartServer = Callable[..., LiveServer]


def ready_by_worker(
    server: LiveServer, dependency: str, *, until: str, workers: int, within: float
) -> dict[int, float]:
    """Ask /health/ready on a new connection each time (so that every worker gets asked)
    until each of the server's `workers` answered `until` ("ok" or "unavailable") for
    `dependency`; when each first did. The status and the check agree on every answer."""
    first: dict[int, float] = {}
    deadline = time.monotonic() + within
    while len(first) < workers:
        assert time.monotonic() < deadline, f"workers seen {until}: {sorted(first)}"
        response = requests.get(
            f"{server.url}/health/ready", headers={"Connection": "close"}, timeout=10
        )
        body = response.json()
        assert (response.status_code == 200) == (body["status"] == "ok"), body
        if body["checks"][dependency] == until:
            first.setdefault(body["worker"], time.monotonic())
        time.sleep(0.02)
    return first
