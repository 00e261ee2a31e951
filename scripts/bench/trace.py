"""What one authenticated `GET /tasks/{id}` executes, counted in-process with a trace hook:
our own files and lines (split into the request path's infrastructure and the read's own
domain code), round trips to Redis and PostgreSQL, FastAPI dependency passes, circuit
breaker guards and thread hops. docs/performance.md's structure table comes from it.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m scripts.bench.trace [--json]

DATABASE_URL names a migrated database (`alembic upgrade head`); the script registers a
user of its own there and leaves it. Counts, not times: the trace hook slows everything.
"""

import asyncio
import json
import sys
import threading
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from inspect import CO_COROUTINE, CO_GENERATOR
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OURS = tuple(str(ROOT / package) + "/" for package in ("service", "db", "sessions"))
# The read's own work: the route, the service, the query, the session check's Lua call
# and the token's claims. Everything else of ours on the path is infrastructure.
DOMAIN = (
    "service/routes/",
    "service/services/",
    "service/schemas/",
    "service/etags.py",
    "db/repositories.py",
    "db/models.py",
    "sessions/store.py",
    "sessions/tokens.py",
    "sessions/keys.py",
)
# Functions whose calls are counted, by (module path suffix, function name). A coroutine
# is counted once, however often it resumes.
COUNTED = {
    ("redis/connection.py", "send_packed_command"): "redis_round_trips",
    ("sqlalchemy/engine/default.py", "do_execute"): "postgresql_statements",
    ("fastapi/dependencies/utils.py", "solve_dependencies"): "dependency_passes",
    ("pybreaker/__init__.py", "calling"): "breaker_guards",
    ("concurrent/futures/thread.py", "submit"): "thread_hops",
}


@dataclass
class Trace:
    own_files: set[str] = field(default_factory=set)
    own_lines: set[tuple[str, int]] = field(default_factory=set)
    infrastructure_lines: set[tuple[str, int]] = field(default_factory=set)
    own_calls: int = 0
    counted: Counter[str] = field(default_factory=Counter)
    # Kept alive, so that a resumed coroutine's frame is known by identity.
    frames: list[FrameType] = field(default_factory=list)


class Tracer:
    def __init__(self) -> None:
        self.recording = False
        self.trace = Trace()
        self._lock = threading.Lock()

    def __call__(self, frame: FrameType, event: str, _: Any) -> Any:
        if not self.recording or event != "call":
            return None
        filename = frame.f_code.co_filename
        for (suffix, name), counter in COUNTED.items():
            if frame.f_code.co_name == name and filename.endswith(suffix):
                with self._lock:
                    resumed = (
                        frame.f_code.co_flags & (CO_COROUTINE | CO_GENERATOR)
                        and frame in self.trace.frames
                    )
                    if not resumed:
                        self.trace.frames.append(frame)
                        self.trace.counted[counter] += 1
        if not filename.startswith(OURS):
            return None
        relative = filename[len(str(ROOT)) + 1 :]
        with self._lock:
            self.trace.own_calls += 1
            self.trace.own_files.add(relative)
        return self._lines(relative)

    def _lines(self, relative: str) -> Any:
        infrastructure = not relative.startswith(DOMAIN)

        def line(frame: FrameType, event: str, _: Any) -> Any:
            if event == "line" and self.recording:
                where = (relative, frame.f_lineno)
                with self._lock:
                    self.trace.own_lines.add(where)
                    if infrastructure:
                        self.trace.infrastructure_lines.add(where)
            return line

        return line


async def _request(
    app: Any, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = [(b"host", b"trace.local")]
    payload = b""
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if body is not None:
        payload = json.dumps(body).encode()
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    content = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(content) if content else None


async def _trace_one_read(tracer: Tracer) -> Trace:
    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        email = f"trace-{uuid.uuid4().hex[:12]}@example.com"
        credentials = {"email": email, "password": "a tracing passphrase"}
        status, _ = await _request(app, "POST", "/register", body=credentials)
        assert status == 201, status
        status, tokens = await _request(app, "POST", "/login", body=credentials)
        assert status == 200, tokens
        token = tokens["access_token"]
        status, task = await _request(app, "POST", "/tasks", token, {"title": "traced"})
        assert status == 201, task
        path = f"/tasks/{task['id']}"
        for _ in range(3):  # warm: pools, caches, compiled statements
            assert (await _request(app, "GET", path, token))[0] == 200
        tracer.recording = True
        status, _ = await _request(app, "GET", path, token)
        tracer.recording = False
        assert status == 200, status
    return tracer.trace


def main(argv: list[str]) -> int:
    tracer = Tracer()
    # Installed before the worker threads start, so the request's hop is traced too.
    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        trace = asyncio.run(_trace_one_read(tracer))
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type,unused-ignore]
    report = {
        "own_files": len(trace.own_files),
        "own_lines": len(trace.own_lines),
        "infrastructure_lines": len(trace.infrastructure_lines),
        "own_calls": trace.own_calls,
        **{name: trace.counted.get(name, 0) for name in COUNTED.values()},
        "files": sorted(trace.own_files),
    }
    if "--json" in argv:
        print(json.dumps(report, indent=2))
    else:
        for name, value in report.items():
            if name != "files":
                print(f"{name:<24} {value}")
        print("files:", *report["files"], sep="\n  ")  # type: ignore[misc]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["Trace", "Tracer", "asdict", "main"]
