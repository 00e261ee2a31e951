"""Sign-in with an OpenID Connect provider, timed whole, against the real provider the tests
use (oidc-provider from npm, tests/oidc/provider; `./scripts/test.sh` installs it).

    TEST_REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python -m scripts.bench.oidc_sign_in

It makes a throwaway database (TEST_DATABASE_URL, as the tests do), starts the provider and
a service with 2 workers trusting it, then runs ROUNDS rounds; each round times SIGN_INS
sign-ins of a returning user (the browser still signed in at the provider: redirect to the
provider, back to the callback, the login code traded at POST /oidc/token), first without
and then with a `code_challenge`, and prints medians and 90th percentiles in milliseconds,
with the share of `POST /oidc/token` in them. Bounded: loopback only, a fixed count, every
process stopped at the end. The Redis db index of TEST_REDIS_URL is flushed first: give it
one nothing else uses.
"""

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.support.databases import migrate, throwaway_database
from tests.support.live_server import TEST_JWT_SECRET, TEST_REDIS_URL, LiveServer
from tests.support.oidc_browser import OidcBrowser
from tests.support.oidc_provider import OidcAccount
from tests.support.oidc_service import Site, account, start_site

UNLIMITED = {
    "RATE_LIMIT": "1000000/minute",
    "LOGIN_RATE_LIMIT": "1000000/minute",
    "REGISTER_RATE_LIMIT": "1000000/hour",
    "LOGIN_ACCOUNT_RATE_LIMIT": "1000000/hour",
    "MAX_SESSIONS_PER_USER": "1000",
}


def sign_in(
    site: Site, browser: OidcBrowser, who: OidcAccount, *, bound: bool
) -> tuple[float, float]:
    """One whole sign-in: its seconds, and those of the token request alone."""
    started = time.perf_counter()
    verifier = secrets.token_urlsafe(48)
    challenge = create_s256_code_challenge(verifier)
    start = f"{site.server.url}/oidc/corp/authorize"
    if bound:
        start += f"?code_challenge={challenge}"
    _, callback = site.to_callback("corp", who, browser=browser, start=start)
    code = site.land(browser, callback)["login_code"]
    body = {"login_code": code} | ({"code_verifier": verifier} if bound else {})
    traded = time.perf_counter()
    response = site.api.post("/oidc/token", json=body)
    if response.status_code != 200:
        raise SystemExit(f"POST /oidc/token answered {response.status_code}: {response.text}")
    ended = time.perf_counter()
    return ended - started, ended - traded


def summary(label: str, timings: list[tuple[float, float]]) -> str:
    whole = sorted(t[0] * 1000 for t in timings)
    token = sorted(t[1] * 1000 for t in timings)
    p90 = whole[int(len(whole) * 0.9) - 1]
    return (
        f"| {label} | {statistics.median(whole):.1f} ms | {p90:.1f} ms "
        f"| {statistics.median(token):.1f} ms |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=40, help="per round and kind (<= 160)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    who = account("bench")
    servers: list[LiveServer] = []
    with tempfile.TemporaryDirectory() as tmp, throwaway_database("tasks_bench") as url:
        migrate(url, "upgrade", "head")

        def start_server(*, port: int | None = None, **env: str) -> LiveServer:
            base = {"APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": TEST_REDIS_URL}
            base |= {"JWT_SECRET": TEST_JWT_SECRET, "LOG_FORMAT": "json", **UNLIMITED}
            server = LiveServer(
                {**base, **env}, workers=2, log_path=Path(tmp) / "api.log", port=port
            )
            servers.append(server)
            return server

        site = start_site(start_server, Path(tmp), [who])
        try:
            browser = site.browser("corp")
            sign_in(site, browser, who, bound=False)  # the account, and the provider's session
            rows: dict[str, list[tuple[float, float]]] = {"plain": [], "bound": []}
            for round_number in range(1, args.rounds + 1):
                for kind in ("plain", "bound"):
                    timings = [
                        sign_in(site, browser, who, bound=kind == "bound")
                        for _ in range(args.sign_ins)
                    ]
                    rows[kind] += timings
                    print(f"round {round_number}: {summary(kind, timings)}", file=sys.stderr)
        finally:
            site.stop()
    print("| sign-in of a returning user | median | 90th percentile | POST /oidc/token |")
    print("| --- | --- | --- | --- |")
    print(summary("without a code challenge", rows["plain"]))
    print(summary("with a code challenge", rows["bound"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
