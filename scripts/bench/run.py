"""Run the wrk scenarios against a running server and print one table.

Used by scripts/bench.sh; see there for the settings. Python only orchestrates here: the
load comes from wrk, whose own CPU use is measured and reported.
"""

import os
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts import hash_time

# The floors run first and again last (the machine drifts during a run); every scenario
# is read against the mean of each floor's two runs.
FLOORS = [("floor", "/floor"), ("io-floor", "/io-floor")]
SCENARIOS = [
    # name, method and path shown, wrk script, data file
    ("login", "POST /login", "login.lua", "users.tsv"),
    ("refresh", "POST /refresh", "refresh.lua", "refresh.tsv"),
    ("list (20 tasks)", "GET /tasks", "list.lua", "tokens.tsv"),
    ("get", "GET /tasks/{id}", "get.lua", "tasks.tsv"),
    ("create", "POST /tasks", "create.lua", "tokens.tsv"),
    ("update", "PUT /tasks/{id}", "update.lua", "tasks.tsv"),
    ("logout", "POST /logout", "logout.lua", "logout.tsv"),
]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Result:
    scenario: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    generator_cpu: float


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def run_wrk(
    url: str, script: Path | None, args: list[str], settings: dict[str, str]
) -> tuple[str, float]:
    command = [
        "wrk", "--latency",
        "-t", settings["threads"], "-c", settings["connections"], "-d", settings["duration"],
        "--timeout", "10s",
    ]  # fmt: skip
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if args:
        command += ["--", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = os.times().elapsed
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = os.times().elapsed - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return output, cpu / wall / (os.cpu_count() or 1)


def parse(name: str, output: str, cpu_share: float) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Result(
        scenario=name,
        requests_per_second=rps,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        generator_cpu=cpu_share,
    )


def _ran_out(output: str, data_file: Path, settings: dict[str, str]) -> bool:
    sent = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    prepared = len(data_file.read_text().splitlines())
    # Requests in flight when a thread stops are not counted in `sent`.
    return sent + int(settings["connections"]) >= prepared


def _print_login_bound(logins_per_second: float) -> None:
    """Login is bound by argon2id: read it against the hash time measured now, on the
    same machine in the same state, as the other scenarios are read against the floor."""
    cores = os.cpu_count() or 1
    verify = hash_time.median_seconds("verify", rounds=10)
    together = hash_time.parallel_verifies_per_second(cores, rounds=10)
    bound = cores / verify
    print(
        f"login bound: argon2id verify {verify * 1000:.1f} ms alone, so {cores} cores / "
        f"{verify * 1000:.1f} ms = {bound:.0f}/s (login {logins_per_second / bound:.0%}); "
        f"{cores} verifies at once, nothing else: {together:.0f}/s "
        f"(login {logins_per_second / together:.0%})"
    )


def main() -> int:
    base_url, floor_url, data = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    settings = {
        "threads": os.environ.get("THREADS", "2"),
        "connections": os.environ.get("CONNECTIONS", "64"),
        "duration": os.environ.get("DURATION", "10s"),
    }
    only = set(filter(None, os.environ.get("SCENARIOS", "").split(",")))
    here = Path(__file__).parent

    def run_floors(suffix: str) -> list[Result]:
        runs = []
        for name, path in FLOORS:
            output, cpu = run_wrk(f"{floor_url}{path}", None, [], settings)
            runs.append(parse(name + suffix, output, cpu))
            print(f"  {name}{suffix}: done", file=sys.stderr)
        return runs

    first = run_floors("")
    results = []
    for name, _, script, data_file in SCENARIOS:
        if only and name.split()[0] not in only:
            continue
        args = [str(data / data_file), settings["threads"]]
        run_settings = settings
        if name == "logout":
            # Each request spends a prepared session: a short run, so they do not run out.
            run_settings = {**settings, "duration": os.environ.get("LOGOUT_DURATION", "1s")}
        output, cpu = run_wrk(base_url, here / script, args, run_settings)
        result = parse(name, output, cpu)
        if name == "logout" and _ran_out(output, data / "logout.tsv", settings):
            # The threads stopped early but wrk divides by the whole duration: not a rate.
            print("  logout: prepared sessions ran out; raise LOGOUT_SESSIONS", file=sys.stderr)
            result.scenario += " (ran out)"
        results.append(result)
        print(f"  {name}: done", file=sys.stderr)
    last = run_floors(" (again)")

    floor, io_floor = (
        (before.requests_per_second + after.requests_per_second) / 2
        for before, after in zip(first, last, strict=True)
    )
    print(
        f"{'scenario':<16} {'req/s':>8} {'of floor':>8} {'of io':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'non-2xx':>8} {'sock err':>8} {'wrk CPU':>8}"
    )
    for r in [*first, *results, *last]:
        print(
            f"{r.scenario:<16} {r.requests_per_second:>8.0f} "
            f"{r.requests_per_second / floor:>8.1%} {r.requests_per_second / io_floor:>8.1%} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.non_2xx:>8} {r.socket_errors:>8} {r.generator_cpu:>8.1%}"
        )
    login = next((r for r in results if r.scenario == "login"), None)
    if login is not None:
        _print_login_bound(login.requests_per_second)
    failed = sum(r.non_2xx + r.socket_errors for r in [*first, *results, *last])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
