"""Login with the second factor against a plain login, in the same sitting.

    .venv/bin/python -m scripts.bench.mfa_login --base-url http://127.0.0.1:8000

The server must run with limits the benchmark cannot exhaust (RATE_LIMIT,
LOGIN_RATE_LIMIT, LOGIN_ACCOUNT_RATE_LIMIT, REGISTER_RATE_LIMIT, MFA_RATE_LIMIT very high,
MAX_SESSIONS_PER_USER=1000). It prepares plain accounts and accounts with the factor on
through the API, then runs ROUNDS rounds, each a plain login run then a login-with-code
run (POST /login answering 403 mfa_required, then POST /login/mfa with a TOTP code), for
DURATION seconds each with CONCURRENCY client threads, and prints logins per second (and
HTTP requests per second) per round and their medians.

A TOTP code is accepted once per account and time step, and the server allows one step
of drift: each account gives two logins per 30 s step (the current step's code, then the
next one's), so the run cycles over many accounts. Bounded: loopback only, a fixed
duration, every thread stops by itself.
"""

import argparse
import collections
import concurrent.futures
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyotp
import requests

PASSWORD = "benchmark password"  # noqa: S105 (a throwaway benchmark account)
STEP = 30


def _session() -> requests.Session:
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=4))
    return http


def _call(http: requests.Session, url: str, path: str, body: dict[str, Any], **kw: Any) -> Any:
    response = http.post(url + path, json=body, timeout=60, **kw)
    if response.status_code >= 300:
        raise SystemExit(f"POST {path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


@dataclass
class Account:
    email: str
    totp: pyotp.TOTP | None = None
    last_step: int = -1

    def code(self) -> str | None:
        """A code of a step the server has not accepted from this account, or None."""
        assert self.totp is not None
        now = int(time.time() // STEP)
        for step in (now, now + 1):
            if step > self.last_step:
                self.last_step = step
                return self.totp.at(step * STEP)
        return None


def prepare(url: str, *, mfa: bool) -> Account:
    http = _session()
    account = Account(f"bench-{uuid.uuid4().hex[:16]}@example.com")
    _call(http, url, "/register", {"email": account.email, "password": PASSWORD})
    if not mfa:
        return account
    tokens = _call(http, url, "/login", {"email": account.email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    enrolled = _call(http, url, "/me/mfa/totp", {"password": PASSWORD}, headers=headers)
    account.totp = pyotp.TOTP(enrolled["secret"])
    code = account.code()
    _call(http, url, "/me/mfa/totp/confirm", {"code": code}, headers=headers)
    return account


@dataclass
class Pool:
    """Accounts handed out to the threads, each back after its login."""

    accounts: collections.deque[Account]
    lock: threading.Lock = field(default_factory=threading.Lock)
    starved: int = 0

    def take_with_code(self) -> tuple[Account, str] | None:
        with self.lock:
            for _ in range(len(self.accounts)):
                account = self.accounts.popleft()
                code = account.code()
                self.accounts.append(account)
                if code is not None:
                    return account, code
            self.starved += 1
            return None

    def take(self) -> Account:
        with self.lock:
            account = self.accounts.popleft()
            self.accounts.append(account)
            return account


def run(url: str, pool: Pool, *, mfa: bool, seconds: float, threads: int) -> tuple[int, int]:
    """Logins completed and HTTP requests answered in `seconds`."""
    deadline = time.monotonic() + seconds
    counts = [(0, 0)] * threads

    def worker(index: int) -> None:
        http, logins, requests_made = _session(), 0, 0
        while time.monotonic() < deadline:
            credentials: dict[str, Any]
            if not mfa:
                credentials = {"email": pool.take().email, "password": PASSWORD}
                _call(http, url, "/login", credentials)
                logins, requests_made = logins + 1, requests_made + 1
                continue
            taken = pool.take_with_code()
            if taken is None:
                time.sleep(0.05)
                continue
            account, code = taken
            credentials = {"email": account.email, "password": PASSWORD}
            response = http.post(url + "/login", json=credentials, timeout=60)
            if response.status_code != 403:
                raise SystemExit(f"POST /login answered {response.status_code}, not 403")
            token = response.json()["mfa_token"]
            _call(http, url, "/login/mfa", {"mfa_token": token, "code": code})
            logins, requests_made = logins + 1, requests_made + 2
        counts[index] = (logins, requests_made)

    with concurrent.futures.ThreadPoolExecutor(threads) as executor:
        list(executor.map(worker, range(threads)))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--accounts", type=int, default=600, help="with the factor on")
    parser.add_argument("--plain-accounts", type=int, default=100)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    if not args.base_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        parser.error("--base-url must be a loopback address")
    url = args.base_url
    print(
        f"preparing {args.plain_accounts} plain and {args.accounts} mfa accounts", file=sys.stderr
    )
    with concurrent.futures.ThreadPoolExecutor(8) as executor:
        plain = list(executor.map(lambda _: prepare(url, mfa=False), range(args.plain_accounts)))
        mfa = list(executor.map(lambda _: prepare(url, mfa=True), range(args.accounts)))
    plain_pool, mfa_pool = Pool(collections.deque(plain)), Pool(collections.deque(mfa))
    rows = []
    for round_number in range(1, args.rounds + 1):
        plain_logins, _ = run(
            url, plain_pool, mfa=False, seconds=args.duration, threads=args.concurrency
        )
        mfa_logins, mfa_requests = run(
            url, mfa_pool, mfa=True, seconds=args.duration, threads=args.concurrency
        )
        row = (
            plain_logins / args.duration,
            mfa_logins / args.duration,
            mfa_requests / args.duration,
        )
        rows.append(row)
        print(
            f"round {round_number}: plain {row[0]:.1f} logins/s; with a code {row[1]:.1f} "
            f"logins/s ({row[2]:.1f} requests/s), {row[1] / row[0]:.0%} of plain",
            file=sys.stderr,
        )
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print("| | plain login | login with a TOTP code | share |")
    print("| --- | --- | --- | --- |")
    for n, row in enumerate(rows, 1):
        print(
            f"| round {n} | {row[0]:.1f}/s | {row[1]:.1f}/s ({row[2]:.1f} requests/s) "
            f"| {row[1] / row[0]:.0%} |"
        )
    print(
        f"| median | {medians[0]:.1f}/s | {medians[1]:.1f}/s ({medians[2]:.1f} requests/s) "
        f"| {medians[1] / medians[0]:.0%} |"
    )
    if mfa_pool.starved:
        print(f"note: threads waited for a fresh time step {mfa_pool.starved} times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
