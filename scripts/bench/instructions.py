"""Instructions per request, counted by valgrind's callgrind: the same count for the same
code however busy the machine is, so a change's cost can be read on a shared 2-core box.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
      .venv/bin/python -m scripts.bench.instructions get 200      # or: list, floor
    # then: the "Collected" count valgrind prints, divided by 200

`get` and `list` run the service in-process (no HTTP server: what a worker does past the
protocol) on DATABASE_URL (migrated) and REDIS_URL; `floor` runs scripts/bench/floor.py's
`/io` the same way. The count covers the requests only: instrumentation is switched on
(`callgrind_control -i on`) after the warm-up and off after the last request.
"""

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

from scripts.bench.trace import _request

WARM_UP = 30


def _instrument(on: bool) -> None:
    command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(command, capture_output=True, check=False)


async def _service_reads(what: str, count: int) -> None:
    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        credentials = {
            "email": f"instructions-{uuid.uuid4().hex[:12]}@example.com",
            "password": "an instruction counting passphrase",
        }
        assert (await _request(app, "POST", "/register", body=credentials))[0] == 201
        _, tokens = await _request(app, "POST", "/login", body=credentials)
        token = tokens["access_token"]
        ids = []
        for n in range(20):
            task = {"title": f"task {n}", "description": "x" * 40}
            ids.append((await _request(app, "POST", "/tasks", token, task))[1]["id"])
        path = f"/tasks/{ids[0]}" if what == "get" else "/tasks"
        await _measured(app, path, token, count)


async def _floor_reads(count: int) -> None:
    from scripts.bench.floor import app

    async with app.router.lifespan_context(app):
        await _measured(app, "/io", None, count)


async def _measured(app: Any, path: str, token: str | None, count: int) -> None:
    for _ in range(WARM_UP):
        await _request(app, "GET", path, token)
    _instrument(True)
    for _ in range(count):
        status, _ = await _request(app, "GET", path, token)
        assert status == 200, status
    _instrument(False)


def main(argv: list[str]) -> int:
    what, count = argv[0], int(argv[1]) if len(argv) > 1 else 200
    if what == "floor":
        asyncio.run(_floor_reads(count))
    elif what in ("get", "list"):
        asyncio.run(_service_reads(what, count))
    else:
        print("usage: python -m scripts.bench.instructions get|list|floor [COUNT]")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
