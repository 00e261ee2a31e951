"""What one authenticated read executes, by the committed trace script (scripts/bench/trace.py):
the structure docs/performance.md reports stays what it says."""

import json
import os
import subprocess
import sys

from tests.support.live_server import ROOT, TEST_JWT_SECRET


def test_an_authenticated_read_makes_two_redis_round_trips_one_statement_and_one_hop(
    database_url: str, redis_url: str
) -> None:
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "RATE_LIMIT": "100000/minute",
        "LOGIN_RATE_LIMIT": "100000/minute",
        # The report is the only thing on stdout: not even the verification mail that the
        # registration logs instead of sending (a warning, without SMTP_HOST).
        "LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench.trace", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)
    # The session check, then SlowAPI's hit; the task's SELECT; one hop into the pool.
    assert trace["redis_round_trips"] == 2
    assert trace["postgresql_statements"] == 1
    assert trace["thread_hops"] == 1
    # FastAPI solves the endpoint and its Tasks service; one guard per dependency.
    assert trace["dependency_passes"] == 2
    assert trace["breaker_guards"] == 2
    # The path stays as small as docs/performance.md says.
    assert trace["own_files"] <= 20, trace["files"]
    assert trace["infrastructure_lines"] <= 220
