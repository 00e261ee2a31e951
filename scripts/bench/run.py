"""Run the wrk scenarios against a running server and print one table.

Used by scripts/bench.sh; see there for the settings. Python only orchestrates here: the
load comes from wrk, whose own CPU use is measured and reported.
"""

import os
import re
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts import hash_time

# The io floor runs before the scenarios of every round (the machine drifts): each scenario
# is read against the floor of its own round, and the median over the rounds is reported.
IO_FLOOR = ("io floor", "/io")
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
        "duration": os.environ.get("DURATION", "8s"),
    }
    rounds = int(os.environ.get("ROUNDS", "3"))
    only = set(filter(None, os.environ.get("SCENARIOS", "").split(",")))
    here = Path(__file__).parent
    scenarios = [s for s in SCENARIOS if not only or s[0].split()[0] in only]
    floors: list[Result] = []
    results: dict[str, list[Result]] = {name: [] for name, *_ in scenarios}
    for round_number in range(1, rounds + 1):
        output, cpu = run_wrk(f"{floor_url}{IO_FLOOR[1]}", None, [], settings)
        floors.append(parse(IO_FLOOR[0], output, cpu))
        for name, _, script, data_file in scenarios:
            args = [str(data / data_file), settings["threads"]]
            run_settings = settings
            if name == "logout":
                # Each request spends a prepared session: a short run, so none runs out.
                run_settings = {**settings, "duration": os.environ.get("LOGOUT_DURATION", "1s")}
            output, cpu = run_wrk(base_url, here / script, args, run_settings)
            result = parse(name, output, cpu)
            if name == "logout" and _ran_out(output, data / "logout.tsv", settings):
                # The threads stopped early but wrk divides by the whole duration: not a rate.
                print("  logout: prepared sessions ran out; raise LOGOUT_SESSIONS", file=sys.stderr)
                result.scenario += " (ran out)"
            results[name].append(result)
        print(f"  round {round_number}: done", file=sys.stderr)

    print(f"{'scenario':<16} {'req/s':>8} {'of io floor, by round':>24} {'median':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>8} {'sock err':>8}")  # fmt: skip
    print(f"{IO_FLOOR[0]:<16} {statistics.median(f.requests_per_second for f in floors):>8.0f}")
    for name, runs in results.items():
        shares = [
            r.requests_per_second / f.requests_per_second for r, f in zip(runs, floors, strict=True)
        ]
        print(
            f"{name:<16} {statistics.median(r.requests_per_second for r in runs):>8.0f} "
            f"{' / '.join(f'{share:.1%}' for share in shares):>24} "
            f"{statistics.median(shares):>7.1%} "
            f"{statistics.median(r.p50_ms for r in runs):>7.2f} "
            f"{statistics.median(r.p99_ms for r in runs):>7.2f} "
            f"{sum(r.non_2xx for r in runs):>8} {sum(r.socket_errors for r in runs):>8}"
        )
    login = results.get("login")
    if login:
        _print_login_bound(statistics.median(r.requests_per_second for r in login))
    failed = sum(r.non_2xx + r.socket_errors for runs in results.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
