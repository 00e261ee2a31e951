"""Prepare the benchmark's users, sessions and tasks through the API itself.

Writes tab-separated data files for the wrk scripts into a directory:
  users.tsv      email, password              (login)
  tokens.tsv     access token                 (GET /tasks, POST /tasks)
  tasks.tsv      access token, task id        (GET /tasks/{id}, PUT /tasks/{id})
  refresh.tsv    refresh token                (POST /refresh)
  logout.tsv     access token, one session each (POST /logout)
"""

import argparse
import concurrent.futures
import uuid
from pathlib import Path
from typing import Any

import requests

PASSWORD = "benchmark password"  # noqa: S105 (a throwaway benchmark account)
TASKS_PER_USER = 20


class Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16)
        self.http.mount("http://", adapter)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base_url + path, timeout=60, **kwargs)
        if response.status_code >= 300:
            raise SystemExit(
                f"{method} {path} answered {response.status_code}: {response.text[:200]}\n"
                "Start the server with budgets the benchmark cannot exhaust, e.g. "
                "RATE_LIMIT=10000000/minute LOGIN_RATE_LIMIT=10000000/minute "
                "LOGIN_ACCOUNT_RATE_LIMIT=10000000/hour REGISTER_RATE_LIMIT=10000000/hour "
                "MAX_SESSIONS_PER_USER=1000"
            )
        return response.json()

    def login(self, email: str) -> dict[str, str]:
        result: dict[str, str] = self.call(
            "POST", "/login", json={"email": email, "password": PASSWORD}
        )
        return result


def _write(path: Path, rows: list[tuple[str, ...]]) -> None:
    path.write_text("".join("\t".join(row) + "\n" for row in rows))


def _check_still_live(client: "Client", access_token: str) -> None:
    """The later logins must not have ended the first sessions (MAX_SESSIONS_PER_USER)."""
    response = client.http.get(
        client.base_url + "/tasks?limit=1",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=60,
    )
    if response.status_code != 200:
        raise SystemExit(
            f"GET /tasks with a prepared session answered {response.status_code}: later logins "
            "ended it. Start the server with MAX_SESSIONS_PER_USER=1000"
        )


def prepare(
    base_url: str, out: Path, *, users: int, refresh_sessions: int, logout_sessions: int
) -> None:
    client = Client(base_url)
    run = uuid.uuid4().hex[:8]
    emails = [f"bench-{run}-{n}@example.com" for n in range(users)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda e: client.call("POST", "/register", json={"email": e, "password": PASSWORD}),
                emails,
            )
        )
        sessions = list(pool.map(client.login, emails))
        tasks: list[tuple[str, ...]] = []
        for session in sessions:
            headers = {"Authorization": f"Bearer {session['access_token']}"}
            created = pool.map(
                lambda n, h=headers: client.call(
                    "POST",
                    "/tasks",
                    json={"title": f"task {n}", "description": "x" * 80},
                    headers=h,
                ),
                range(TASKS_PER_USER),
            )
            tasks += [(session["access_token"], str(task["id"])) for task in created]
        refresh = list(pool.map(client.login, [emails[n % users] for n in range(refresh_sessions)]))
        logout = list(pool.map(client.login, [emails[n % users] for n in range(logout_sessions)]))
    _check_still_live(client, sessions[0]["access_token"])

    out.mkdir(parents=True, exist_ok=True)
    _write(out / "users.tsv", [(email, PASSWORD) for email in emails])
    _write(out / "tokens.tsv", [(s["access_token"],) for s in sessions])
    _write(out / "tasks.tsv", tasks)
    _write(out / "refresh.tsv", [(s["refresh_token"],) for s in refresh])
    _write(out / "logout.tsv", [(s["access_token"],) for s in logout])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--refresh-sessions", type=int, default=256)
    parser.add_argument("--logout-sessions", type=int, default=3000)
    args = parser.parse_args()
    prepare(
        args.base_url,
        args.out,
        users=args.users,
        refresh_sessions=args.refresh_sessions,
        logout_sessions=args.logout_sessions,
    )


if __name__ == "__main__":
    main()
