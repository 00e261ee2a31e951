"""GET /metrics: Prometheus text, summed over every worker, behind METRICS_TOKEN."""

import re
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.api import PASSWORD, Api
from tests.support.live_server import LiveServer, StartServer

METRICS_TOKEN = "metrics-token-for-the-tests"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture(scope="module")
def metered(start_server: StartServer) -> LiveServer:
    return start_server(workers=2, METRICS_TOKEN=METRICS_TOKEN, LOGIN_RATE_LIMIT="3/minute")


def _scrape(url: str) -> str:
    # A new connection each time: either worker may answer.
    response = requests.get(f"{url}/metrics", headers={**SCRAPE, "Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def _value(text: str, name: str, **labels: str) -> float:
    """The sample `name{labels}` (labels in any order); 0 when absent."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)\{(.*)\} (\S+)", line)
        if match and match[1] == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
            if found == labels:
                return float(match[3])
    return 0.0


def test_metrics_are_not_served_without_a_configured_token(api: Api) -> None:
    response = api.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {METRICS_TOKEN}"])
def test_metrics_need_the_token(metered: LiveServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{metered.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "http_requests_total" not in response.text


def test_requests_are_counted_by_route_template_over_both_workers(metered: LiveServer) -> None:
    api = Api(metered.url)
    tokens = api.new_user()
    tasks = [api.create_task(tokens) for _ in range(3)]
    labels = {"method": "GET", "route": "/tasks/{task_id}", "status": "200"}
    before = _value(_scrape(metered.url), "http_requests_total", **labels)
    for n in range(30):
        task_id = tasks[n % 3]["id"]
        response = requests.get(f"{metered.url}/tasks/{task_id}", timeout=10,
                                headers={**tokens.headers, "Connection": "close"})  # fmt: skip
        assert response.status_code == 200
    # Whichever worker answers the scrape reports the sum of both.
    totals = {_value(_scrape(metered.url), "http_requests_total", **labels) for _ in range(6)}
    assert totals == {before + 30}
    text = _scrape(metered.url)
    assert f'/tasks/{tasks[0]["id"]}"' not in text  # never the raw path
    buckets = _value(
        text, "http_request_duration_seconds_count", method="GET", route="/tasks/{task_id}"
    )
    assert buckets >= 30
    assert _value(text, "http_requests_total", method="GET", route="unmatched", status="404") == 0
    requests.get(f"{metered.url}/no/such/path", timeout=10)
    after = _scrape(metered.url)
    assert _value(after, "http_requests_total", method="GET", route="unmatched", status="404") >= 1


def test_sessions_logins_and_limits_are_counted(metered: LiveServer) -> None:
    api = Api(metered.url)
    before = _scrape(metered.url)
    email = api.register()
    tokens = api.login(email)
    assert api.post("/logout", headers=tokens.headers).status_code == 200
    wrong = {"email": email, "password": "a wrong password"}
    assert [api.post("/login", json=wrong).status_code for _ in range(3)] == [401, 401, 429]
    after = _scrape(metered.url)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("session_revocations_total", reason="logout") == 1
    assert grew("login_attempts_total", outcome="success") == 1
    assert grew("login_attempts_total", outcome="failure") == 2
    assert grew("login_attempts_total", outcome="limited") == 1
    assert grew("rate_limit_rejections_total", limit="login") == 1
    assert _value(after, "dependency_circuit_state", dependency="redis") == 0
    assert _value(after, "dependency_circuit_state", dependency="postgresql") == 0
    assert PASSWORD not in after


def test_what_the_http_parser_refuses_is_counted_too(metered: LiveServer) -> None:
    labels = {"method": "UNKNOWN", "route": "unmatched", "status": "400"}
    before = _value(_scrape(metered.url), "http_requests_total", **labels)
    parts = urlsplit(metered.url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(b"GE T / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
    # Counted once the refusal is written (the client may read it first), by whichever
    # worker refused it: every scrape sums both.
    deadline = time.monotonic() + 10
    while _value(_scrape(metered.url), "http_requests_total", **labels) < before + 1:
        assert time.monotonic() < deadline, "the refusal was never counted"
        time.sleep(0.05)
    counts = {_value(_scrape(metered.url), "http_requests_total", **labels) for _ in range(6)}
    assert counts == {before + 1}
