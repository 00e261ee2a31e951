"""The default stack (`docker compose up --build`) exercised as a user would, through the
published port. One stack for the module, in the order below: the later scenarios restart,
stop and recreate its containers, and each leaves it healthy for the next but the last.
"""

import json
import socket
import statistics
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from service.config import EXAMPLE_JWT_SECRET
from tests.stack.client import (
    User,
    check_response,
    json_lines,
    login,
    open_socket,
    register_and_login,
)
from tests.stack.compose import Stack, wait_for_status

GRACEFUL_SECONDS = 20  # GRACEFUL_TIMEOUT_SECONDS' default in docker-compose.yml
API_UID = "10001"
# After a Redis restart: 3 users x 60 requests, 40 at a time.
AFTER_RESTART_USERS = 3
AFTER_RESTART_PER_USER = 60
AFTER_RESTART_CONCURRENCY = 40


def test_up_build_reaches_healthy_with_only_the_proxy_published(stack: Stack) -> None:
    published = {
        entry["Service"]: [p for p in entry.get("Publishers") or [] if p.get("PublishedPort")]
        for entry in stack.containers()
    }
    assert set(published) == {"proxy", "api", "db", "redis"}
    assert {service for service, ports in published.items() if ports} == {"proxy"}
    (port,) = published["proxy"]
    assert port["URL"] == "127.0.0.1" and port["TargetPort"] == 8080
    ready = check_response(requests.get(f"{stack.url}/health/ready", timeout=10), 200)
    assert (ready["status"], ready["checks"]) == ("ok", {"postgresql": "ok", "redis": "ok"})


def test_accounts_tasks_and_logout_through_the_proxy(stack: Stack) -> None:
    url = stack.url
    user = register_and_login(url)
    auth = user.auth

    created = check_response(
        requests.post(
            f"{url}/tasks",
            json={"title": "Write docs", "status": "in_progress"},
            headers=auth,
            timeout=10,
        ),
        201,
    )
    assert isinstance(created, dict) and created["title"] == "Write docs"
    task = f"{url}/tasks/{created['id']}"
    page = check_response(
        requests.get(f"{url}/tasks", params={"status": "in_progress"}, headers=auth, timeout=10),
        200,
    )
    assert isinstance(page, dict) and page["total"] == 1
    assert [item["id"] for item in page["items"]] == [created["id"]]
    fetched = check_response(requests.get(task, headers=auth, timeout=10), 200)
    assert fetched == created
    replaced = check_response(
        requests.put(
            task,
            json={"title": "Write docs", "description": "README", "status": "done"},
            headers=auth,
            timeout=10,
        ),
        200,
    )
    assert isinstance(replaced, dict)
    assert (replaced["description"], replaced["status"]) == ("README", "done")
    deleted = check_response(requests.delete(task, headers=auth, timeout=10), 200)
    assert deleted == {"id": created["id"], "deleted": True}
    missing = check_response(requests.get(task, headers=auth, timeout=10), 404)
    assert isinstance(missing, dict) and "detail" in missing

    sessions = check_response(requests.get(f"{url}/sessions", headers=auth, timeout=10), 200)
    assert isinstance(sessions, dict) and [s["current"] for s in sessions["items"]] == [True]
    refreshed = check_response(
        requests.post(f"{url}/refresh", json={"refresh_token": user.refresh_token}, timeout=10),
        200,
    )
    assert isinstance(refreshed, dict)
    old_token, auth = user.access_token, {"Authorization": f"Bearer {refreshed['access_token']}"}
    stale = {"Authorization": f"Bearer {old_token}"}
    check_response(requests.get(f"{url}/tasks", headers=stale, timeout=10), 401)

    check_response(requests.post(f"{url}/logout", headers=auth, timeout=10), 200)
    refused = check_response(requests.get(f"{url}/tasks", headers=auth, timeout=10), 401)
    assert isinstance(refused, dict) and "detail" in refused


def test_proxy_limits_headers_and_bodies_before_the_api(stack: Stack) -> None:
    url = stack.url
    marker = uuid.uuid4().hex
    huge = {"X-Request-ID": marker, "X-Padding": "a" * 64 * 1024}
    refused = check_response(requests.get(f"{url}/health/live", headers=huge, timeout=10), 431)
    assert refused == {"detail": "Request header too large"}
    long_line = requests.get(f"{url}/health/live?{'a' * 16 * 1024}", timeout=10)
    assert check_response(long_line, 414) == {"detail": "Request line too long"}
    with open_socket(url) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400") and b'{"detail":"Bad request"}' in answer

    user = register_and_login(url)
    body = b'{"title": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    headers = {**user.auth, "Content-Type": "application/json"}
    too_big = requests.post(f"{url}/tasks", data=body, headers=headers, timeout=30)
    assert check_response(too_big, 413) == {"detail": "Request body too large"}
    # Past the API's own 1 MiB limit but within the proxy's: the API answers it.
    body = b'{"title": "' + b"x" * (1536 * 1024) + b'"}'
    by_api = requests.post(f"{url}/tasks", data=body, headers=headers, timeout=30)
    check_response(by_api, 413)
    assert by_api.headers["X-Request-ID"] != too_big.headers["X-Request-ID"]
    assert marker not in stack.logs("api")


def trickle(url: str, first: bytes, then: bytes | None) -> float:
    """Send `first`, then `then` one byte every half second (or nothing): seconds until
    the server closed the connection."""
    started = time.monotonic()
    with open_socket(url) as sock:
        sock.sendall(first)
        if then is None:
            while sock.recv(65536):
                pass  # a response, if any, then the close
            return time.monotonic() - started
        for byte in then:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.5)
            try:
                if sock.recv(65536) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        return time.monotonic() - started


def test_proxy_times_out_slow_and_idle_clients(stack: Stack) -> None:
    url = stack.url
    host = url.removeprefix("http://")
    slow_header = (f"GET /health/live HTTP/1.1\r\nHost: {host}\r\n".encode(), b"X-Slow: " * 200)
    slow_body = (
        f"POST /register HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100\r\n\r\n{{".encode(),
        None,
    )
    idle = (f"GET /health/live HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), None)
    scenarios = {"slow header": slow_header, "slow body": slow_body, "idle keep-alive": idle}
    seconds: dict[str, float] = {}

    def run(name: str) -> None:
        seconds[name] = trickle(url, *scenarios[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in scenarios]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # deploy/nginx.conf: 10 s for the whole header, 10 s without body bytes, 15 s idle.
    assert 8 <= seconds["slow header"] <= 14, seconds
    assert 8 <= seconds["slow body"] <= 14, seconds
    assert 13 <= seconds["idle keep-alive"] <= 19, seconds


def test_forwarded_for_is_set_by_the_proxy_not_the_client(stack: Stack) -> None:
    request_id = uuid.uuid4().hex
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": request_id}
    response = requests.get(f"{stack.url}/health/live", headers=headers, timeout=10)
    assert response.headers["X-Request-ID"] == request_id
    (api_line,) = [e for e in json_lines(stack.logs("api")) if e.get("request_id") == request_id]
    ((access_log, _),) = stack.streams("proxy")
    (proxy_line,) = [e for e in json_lines(access_log) if e.get("request_id") == request_id]
    assert api_line["client_ip"] == proxy_line["client_ip"] != "203.0.113.9"


def admin(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return stack.exec("api", "python", "-m", "scripts.sessions", *args)


def test_admin_cli_lists_and_kills_sessions(stack: Stack) -> None:
    url = stack.url
    ada = register_and_login(url)
    second = login(url, User(ada.email, ada.password))
    bob = register_and_login(url)

    listed = admin(stack, "list", "--user", ada.email, "--json")
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)
    assert len(sessions) == 2 and {s["email"] for s in sessions} == {ada.email}
    table = admin(stack, "list")
    assert table.returncode == 0 and ada.email in table.stdout and bob.email in table.stdout

    ids = [s["id"] for s in sessions]
    killed = admin(stack, "kill", ids[0])
    assert killed.returncode == 0, killed.stderr
    statuses = {
        requests.get(f"{url}/sessions", headers=user.auth, timeout=10).status_code
        for user in (ada, second)
    }
    assert statuses == {200, 401}
    assert admin(stack, "kill", "--user", ada.email).returncode == 0
    for user in (ada, second):
        check_response(requests.get(f"{url}/sessions", headers=user.auth, timeout=10), 401)
    check_response(requests.get(f"{url}/sessions", headers=bob.auth, timeout=10), 200)
    assert admin(stack, "kill", ids[0]).returncode == 1  # gone already: named, exit 1


def test_every_log_line_is_one_json_object(stack: Stack) -> None:
    ((stdout, stderr),) = stack.streams("api")
    assert stderr == ""
    api = json_lines(stdout)
    events = {line["event"] for line in api}
    assert {"dependency_ready", "migration_finished", "server_starting", "request"} <= events
    assert {"session_created", "session_revoked"} <= events
    assert all({"event", "level", "timestamp"} <= set(line) for line in api)
    assert EXAMPLE_JWT_SECRET not in stack.logs("api")
    # The proxy: its access log (stdout) is JSON; nginx's error log (stderr, warnings such
    # as a refused body) has nginx's own format, as the README says.
    ((access_log, _),) = stack.streams("proxy")
    proxy = json_lines(access_log)
    assert proxy and all(line["logger"] == "proxy" for line in proxy)


def test_sessions_survive_a_redis_restart(stack: Stack) -> None:
    url = stack.url
    user = register_and_login(url)
    stack.compose("restart", "redis")
    deadline = time.monotonic() + 60
    statuses: list[int] = []
    while time.monotonic() < deadline:
        statuses.append(requests.get(f"{url}/tasks", headers=user.auth, timeout=10).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.5)
    # Redis unreachable for a moment is a 503, never a 401: the session was not lost.
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
    # Once Redis answers again, every request does: no pooled connection that died with
    # the restart may fail a later one. Many at once, since sequential requests reuse one
    # connection per worker and would never reach the others; several users, since each
    # has a budget of 100 requests a minute (RATE_LIMIT).
    users = [user, *(register_and_login(url) for _ in range(AFTER_RESTART_USERS - 1))]
    requests_ = [u.auth for u in users for _ in range(AFTER_RESTART_PER_USER)]
    with ThreadPoolExecutor(max_workers=AFTER_RESTART_CONCURRENCY) as pool:
        after = list(
            pool.map(
                lambda auth: requests.get(f"{url}/tasks", headers=auth, timeout=10).status_code,
                requests_,
            )
        )
    if set(after) != {200}:
        stack.compose("restart", "api")  # fresh pools for the scenarios after this one
    stack.wait_until_healthy()
    assert set(after) == {200}, after


def test_database_outage_is_a_503_and_recovers_without_restarting_the_api(stack: Stack) -> None:
    url = stack.url
    user = register_and_login(url)
    (api,) = stack.container_ids("api")
    started = stack.inspect(api)["State"]["StartedAt"]

    stack.compose("stop", "db")
    try:
        down = check_response(requests.get(f"{url}/tasks", headers=user.auth, timeout=30), 503)
        assert isinstance(down, dict) and "detail" in down
        # Waited for: another worker may still trust a ping answered within the last second
        # (service/health.py), before the server went away.
        refused = wait_for_status(f"{url}/health/ready", 503, seconds=10)
        ready = check_response(refused, 503)
        assert isinstance(ready, dict) and ready["checks"]["postgresql"] != "ok"
        assert ready["checks"]["redis"] == "ok"
    finally:
        stack.compose("start", "db")

    wait_for_status(f"{url}/health/ready", 200)
    # Polled: a pooled Redis connection that died with the earlier Redis restart may fail
    # one request (503) before the pool replaces it; the session must hold (never a 401).
    wait_for_status(f"{url}/tasks", 200, headers=user.auth, seconds=20)
    state = stack.inspect(api)
    assert state["State"]["StartedAt"] == started and state["RestartCount"] == 0
    stack.wait_until_healthy()


def test_a_frozen_database_is_refused_fast_and_recovers_by_itself(stack: Stack) -> None:
    url = stack.url
    user = register_and_login(url)
    stack.compose("pause", "db")  # it accepts connections and answers nothing

    def refused() -> float:
        started = time.monotonic()
        down = check_response(requests.get(f"{url}/tasks", headers=user.auth, timeout=30), 503)
        assert down == {"detail": "Database unavailable"}
        return time.monotonic() - started

    try:
        # The first requests each wait out the bound on a round trip
        # (DB_STATEMENT_TIMEOUT_MS + 1 s) until every worker's circuit is open; from then on
        # each worker lets one trial through every 0.5 s (half-open) and refuses every other
        # request at once. The traffic comes in bursts of 8, as a service's does: a lone
        # client taking turns between the two workers can meet a trial on almost every
        # request (each trial lasts the bound, by which time the other worker's half-open
        # timer has run out), which says nothing of what most requests get.
        bursts: list[list[float]] = []
        with ThreadPoolExecutor(8) as pool:
            while len(bursts) < 6 and not (bursts and statistics.median(bursts[-1]) < 0.5):
                bursts.append(list(pool.map(lambda _: refused(), range(8))))
        started = time.monotonic()
        ready = check_response(requests.get(f"{url}/health/ready", timeout=30), 503)
        assert ready["checks"] == {"postgresql": "unavailable", "redis": "ok"}
        assert time.monotonic() - started < 3
    finally:
        stack.compose("unpause", "db")
        # Recovered before anything is asserted, so the next scenarios find the stack well.
        wait_for_status(f"{url}/tasks", 200, headers=user.auth, seconds=15)
        stack.wait_until_healthy()
    # The first burst also queues behind its own requests: two request threads per worker,
    # each held ~6 s (measured) by the bounded steps of a first meeting with the hung server.
    # After it, no request waits more than such a meeting, and most not at all.
    first, *later = bursts
    assert max(first) < 15, bursts
    assert all(max(burst) < 8 for burst in later), bursts
    assert statistics.median(bursts[-1]) < 0.5, bursts


def test_users_tasks_and_sessions_survive_down_and_up(stack: Stack) -> None:
    url = stack.url
    user = register_and_login(url)
    task = check_response(
        requests.post(f"{url}/tasks", json={"title": "Survive"}, headers=user.auth, timeout=10),
        201,
    )
    assert isinstance(task, dict)

    stack.compose("down", "--timeout", "30")  # the volumes are kept
    assert not stack.containers()
    stack.wait_until_healthy(stack.up_attached("--build"))

    url = stack.url  # a new proxy container: a new random port
    fetched = check_response(
        requests.get(f"{url}/tasks/{task['id']}", headers=user.auth, timeout=10), 200
    )
    assert fetched == task
    login(url, User(user.email, user.password))


def test_the_api_runs_as_uid_10001_with_no_build_leftovers(stack: Stack) -> None:
    assert stack.exec("api", "id", "-u").stdout.strip() == API_UID
    report = json.loads(
        stack.python_in(
            "api",
            """
import json, os, shutil
from pathlib import Path
found = {
    "compilers": [t for t in ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as")
                  if shutil.which(t)],
    "app": sorted(str(p) for p in Path("/app").rglob("*")
                  if "__pycache__" not in p.parts),
    "caches": [p for p in ("/root/.cache", "/app/.cache", "/tmp/pip", "/tmp/wheels", "/wheels",
                           "/build",
                           "/run/secrets", "/etc/pip.conf")
               if os.path.exists(p)]
              + [str(p) for p in Path("/var/cache/apt/archives").glob("*.deb")]
              + [str(p) for p in Path("/var/lib/apt/lists").glob("*_Packages*")],
    "pip_env": sorted(k for k in os.environ if k in {"PIP_CERT", "PIP_CONFIG_FILE"}),
}
print(json.dumps(found))
""",
        )
    )
    assert report["compilers"] == [] and report["caches"] == [] and report["pip_env"] == []
    app = report["app"]
    assert "/app/alembic.ini" in app and "/app/scripts/entrypoint.sh" in app
    unwanted = ("test", "bench", ".env", "README", "Dockerfile", "docker-compose", ".git")
    assert not [path for path in app if any(word in path for word in unwanted)], app


def sends_partly(url: str, token: str, request_id: str, body: bytes) -> tuple[socket.socket, bytes]:
    sock = open_socket(url)
    host = url.removeprefix("http://")
    head = (
        f"POST /tasks HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body[:5])
    return sock, body[5:]


def api_has_a_proxied_connection(stack: Stack) -> bool:
    # /proc/net/tcp: an established connection (state 01) to port 8000 (1F40) from a peer
    # other than loopback (the healthcheck), i.e. from the proxy.
    code = """
lines = open("/proc/net/tcp").read().splitlines()[1:]
print(sum(1 for line in lines if line.split()[1].endswith(":1F40") and line.split()[3] == "01"
          and not line.split()[2].startswith("0100007F")))
"""
    return int(stack.python_in("api", code).strip()) > 0


def test_stop_api_exits_0_within_the_grace_period_and_finishes_requests(stack: Stack) -> None:
    url = stack.url
    user = register_and_login(url)
    (api,) = stack.container_ids("api")
    request_id = uuid.uuid4().hex
    sock, rest = sends_partly(url, user.access_token, request_id, b'{"title": "in flight"}')
    with sock:
        deadline = time.monotonic() + 15
        while not api_has_a_proxied_connection(stack):
            assert time.monotonic() < deadline, "the request never reached the api"
            time.sleep(0.2)
        started = time.monotonic()
        stop = subprocess.Popen(stack.command("stop", "api"), env=stack.environment())
        try:
            deadline = time.monotonic() + 15
            while "Shutting down" not in stack.logs("api"):
                assert time.monotonic() < deadline, "the api never began to shut down"
                time.sleep(0.2)
            assert stack.inspect(api)["State"]["Running"]
            sock.sendall(rest)  # the request in flight completes after SIGTERM
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
            assert stop.wait(timeout=60) == 0
        finally:
            if stop.poll() is None:
                stop.kill()
    elapsed = time.monotonic() - started
    status_line, _, rest_of_response = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 201"), response[:500]
    assert json.loads(rest_of_response.partition(b"\r\n\r\n")[2])["title"] == "in flight"
    state = stack.inspect(api)["State"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 0, False)
    assert elapsed < GRACEFUL_SECONDS, elapsed
