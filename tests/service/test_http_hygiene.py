"""HTTP edge cases: no redirect built from Host, ALLOWED_HOSTS, HEAD, security headers,
Bearer challenges on every 401, bounded request headers, JSON for what the parser refuses."""

import contextlib
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.api import Api
from tests.support.live_server import LiveServer, StartServer


def _raw(server: LiveServer, request: bytes, read: int = 65536) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(read):
                chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("path", ["/tasks/", "/tasks/1/", "/health/live/", "/me/", "/docs/"])
def test_a_trailing_slash_with_a_forged_host_is_a_json_404(api: Api, path: str) -> None:
    tokens = api.new_user()
    response = api.get(
        path, headers={**tokens.headers, "Host": "evil.example.net"}, allow_redirects=False
    )
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"] == "application/json"
    assert "evil" not in response.text


def test_no_response_names_the_forged_host(server: LiveServer) -> None:
    for path in (b"/tasks/", b"/tasks", b"/nowhere/", b"/docs/"):
        answer = _raw(
            server,
            b"GET " + path + b" HTTP/1.1\r\nHost: evil.example.net\r\nConnection: close\r\n\r\n",
        )
        assert b"evil" not in answer, answer
        assert not answer.startswith(b"HTTP/1.1 3"), answer


@pytest.fixture(scope="module")
def host_checked(start_server: StartServer) -> LiveServer:
    return start_server(ALLOWED_HOSTS="api.example.com, *.tasks.example.org, 127.0.0.1")


@pytest.mark.parametrize(
    "host", ["api.example.com", "API.example.com:8443", "eu.tasks.example.org", "127.0.0.1:1"]
)
def test_allowed_hosts_are_served(host_checked: LiveServer, host: str) -> None:
    response = requests.get(f"{host_checked.url}/health/live", headers={"Host": host}, timeout=10)
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example.net", "tasks.example.org.evil.net", "example.com"])
def test_other_hosts_are_400_json(host_checked: LiveServer, host: str) -> None:
    response = requests.get(f"{host_checked.url}/health/live", headers={"Host": host}, timeout=10)
    assert response.status_code == 400
    assert response.json() == {"detail": "Host not allowed"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "hosts",
    [
        [b"api.example.com", b"evil.example.net"],
        [b"evil.example.net", b"api.example.com"],
        [b"api.example.com", b"api.example.com"],
    ],
)
def test_more_than_one_host_header_is_400(host_checked: LiveServer, hosts: list[bytes]) -> None:
    # RFC 9112 §3.2: a request with more than one Host field is a 400, whichever it names.
    lines = b"".join(b"Host: " + host + b"\r\n" for host in hosts)
    answer = _raw(
        host_checked, b"GET /health/live HTTP/1.1\r\n" + lines + b"Connection: close\r\n\r\n"
    )
    status, headers, body = _head_and_body(answer)
    assert status.startswith(b"HTTP/1.1 400 "), answer
    assert json.loads(body) == {"detail": "Host not allowed"}
    assert headers[b"x-request-id"]


def test_any_host_is_served_by_default(api: Api) -> None:
    assert api.get("/health/live", headers={"Host": "whatever.example"}).status_code == 200


def test_head_is_answered_on_every_get_route(api: Api) -> None:
    tokens = api.new_user()
    task = api.create_task(tokens)
    spec = api.get("/openapi.json").json()
    paths = [path for path, item in spec["paths"].items() if "get" in item]
    assert "/tasks/{task_id}" in paths
    for path in paths:
        concrete = path.replace("{task_id}", str(task["id"])).replace("{session_id}", "x")
        get = api.get(concrete, headers=tokens.headers)
        head = api.request("HEAD", concrete, headers=tokens.headers)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
    head = api.request("HEAD", f"/tasks/{task['id']}", headers=tokens.headers)
    assert (
        head.headers["etag"]
        == api.get(f"/tasks/{task['id']}", headers=tokens.headers).headers["etag"]
    )


def test_every_response_carries_nosniff(api: Api) -> None:
    tokens = api.new_user()
    for response in (
        api.get("/health/live"),
        api.get("/tasks"),
        api.get("/tasks", headers=tokens.headers),
        api.get("/nowhere"),
        api.post("/tasks", json={}, headers=tokens.headers),
        api.get("/openapi.json"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff", response.url


def test_user_data_and_tokens_are_not_stored(api: Api) -> None:
    email = api.register()
    login = api.post("/login", json={"email": email, "password": "correct horse battery"})
    tokens = api.login(email)
    task = api.create_task(tokens)
    for response in (
        login,
        api.get("/me", headers=tokens.headers),
        api.get("/tasks", headers=tokens.headers),
        api.get(f"/tasks/{task['id']}", headers=tokens.headers),
        api.patch(f"/tasks/{task['id']}", json={}, headers=tokens.headers),
        api.get("/sessions", headers=tokens.headers),
    ):
        assert "no-store" in response.headers["cache-control"], response.url


def test_every_401_carries_a_bearer_challenge(api: Api) -> None:
    email = api.register()
    for response in (
        api.post("/login", json={"email": email, "password": "wrong password!"}),
        api.post("/login", json={"email": "nobody-x1@example.com", "password": "whatever1"}),
        api.post("/refresh", json={"refresh_token": "1.abc.def"}),
        api.get("/tasks"),
        api.get("/tasks", headers={"Authorization": "Bearer nonsense"}),
    ):
        assert response.status_code == 401, response.url
        assert response.headers["www-authenticate"].startswith("Bearer"), response.url


def test_headers_under_16_kib_are_served(api: Api) -> None:
    response = api.get("/health/live", headers={"X-Padding": "a" * 15_000})
    assert response.status_code == 200


@pytest.mark.parametrize("size", [17 * 1024, 200 * 1024, 4 * 1024 * 1024])
def test_headers_over_16_kib_are_refused_not_buffered(server: LiveServer, size: int) -> None:
    host = urlsplit(server.url).netloc.encode()
    request = b"GET /health/live HTTP/1.1\r\nHost: " + host + b"\r\nX-Padding: " + b"a" * size
    # No end of headers: a server that buffered them all would still be waiting.
    answer = _raw(server, request)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert answer.endswith(b'{"detail": "Request headers too large: at most 16 KiB in total"}')


def test_many_small_headers_over_16_kib_are_refused(api: Api) -> None:
    headers = {f"X-H{n}": "v" * 100 for n in range(200)}
    with pytest.raises(requests.ConnectionError):
        response = api.get("/health/live", headers=headers)
        # Refused while the headers arrive: a 431, or a connection closed under the client.
        assert response.status_code == 431
        raise requests.ConnectionError(response.status_code)


def _head_and_body(answer: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GE T /health/live HTTP/1.1\r\nHost: x\r\n\r\n", id="malformed-request-line"),
        pytest.param(b"GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n", id="unknown-version"),
        pytest.param(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="content-length-with-transfer-encoding",
        ),
        pytest.param(b"GET /health/live HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", id="space"),
        pytest.param(b"GET /health/live HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n", id="no-colon"),
        pytest.param(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", id="nul-value"),
    ],
)
def test_what_the_parser_refuses_is_a_json_400_that_closes(
    server: LiveServer, request_bytes: bytes
) -> None:
    status, headers, body = _head_and_body(_raw(server, request_bytes))
    assert status.startswith(b"HTTP/1.1 400 "), (status, body)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"connection"] == b"close"
    assert int(headers[b"content-length"]) == len(body)
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and "Malformed HTTP request" in detail


def test_an_oversized_url_is_refused_as_json_and_closes(server: LiveServer) -> None:
    request = b"GET /tasks?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body = _head_and_body(_raw(server, request))
    # Refused before it is complete: by the parser (400) or the 16 KiB head bound (431).
    assert status.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), (status, body)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"connection"] == b"close"
    assert "detail" in json.loads(body)


def test_the_connection_is_closed_after_the_400(server: LiveServer) -> None:
    # A valid request pipelined after the refused one is never answered: the server
    # closes the connection (end of stream, not the client's timeout).
    good = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GE T / HTTP/1.1\r\nHost: x\r\n\r\n" + good)
        answer = b""
        while chunk := sock.recv(65536):  # TimeoutError here: the server kept it open
            answer += chunk
    assert answer.count(b"HTTP/1.1 ") == 1 and answer.startswith(b"HTTP/1.1 400 ")


def _access_line(server: LiveServer, request_id: bytes) -> dict[str, object]:
    # Written once the answer is sent: it may come a moment after the client has it.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in server.logs().splitlines():
            entry = json.loads(line)
            if entry.get("event") == "request" and entry.get("request_id") == request_id.decode():
                return dict(entry)
        time.sleep(0.02)
    raise AssertionError(f"no access line for {request_id!r}")


def test_a_60_kb_request_line_in_one_write_is_a_431_and_logged_short(server: LiveServer) -> None:
    # One write, so that the whole line arrives in one read: the bound counts what the
    # parser read, not only what it keeps buffering.
    request = b"GET /tasks?q=" + b"a" * 60_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body = _head_and_body(_raw(server, request))
    assert status.startswith(b"HTTP/1.1 431 "), (status, body)
    assert headers[b"connection"] == b"close"
    assert json.loads(body) == {"detail": "Request headers too large: at most 16 KiB in total"}
    line = _access_line(server, headers[b"x-request-id"])
    assert line["status"] == 431
    assert max(len(line) for line in server.logs().splitlines()) < 2048


def test_what_the_parser_refuses_has_a_request_id_and_an_access_line(server: LiveServer) -> None:
    status, headers, _ = _head_and_body(
        _raw(server, b"GE T /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    )
    assert status.startswith(b"HTTP/1.1 400 ")
    assert headers[b"x-content-type-options"] == b"nosniff"
    line = _access_line(server, headers[b"x-request-id"])
    assert (line["status"], line["client_ip"]) == (400, "127.0.0.1")


@pytest.fixture(scope="module")
def head_timed(start_server: StartServer) -> LiveServer:
    return start_server(REQUEST_HEAD_TIMEOUT_SECONDS="1")


def test_a_slow_head_is_a_408_that_closes(head_timed: LiveServer) -> None:
    # A header line every 0.3 s: each arrives long before any idle timeout would fire,
    # but the head is never complete.
    with socket.create_connection(("127.0.0.1", head_timed.port), timeout=10) as sock:
        sock.settimeout(0.3)
        started = time.monotonic()
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for n in range(30):
            if not answer:  # once the answer begins, it is only read to its end
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(b"X-Slow-%d: yes\r\n" % n)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break  # a line sent as the server closed: what it had sent was read first
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
    status, headers, body = _head_and_body(answer)
    assert status.startswith(b"HTTP/1.1 408 "), answer
    assert 0.9 < elapsed < 5, elapsed
    assert headers[b"connection"] == b"close"
    assert json.loads(body) == {"detail": "Request head not received in time: send it at once"}
    assert _access_line(head_timed, headers[b"x-request-id"])["status"] == 408


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    head_timed: LiveServer,
) -> None:
    with socket.create_connection(("127.0.0.1", head_timed.port), timeout=5) as sock:
        assert sock.recv(65536) == b""  # TimeoutError here: the server kept it open


def test_a_prompt_client_keeps_its_connection_past_the_head_timeout(
    head_timed: LiveServer,
) -> None:
    # The bound is on a head's arrival, not on the connection's life.
    with requests.Session() as http:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert http.get(f"{head_timed.url}/health/live", timeout=5).status_code == 200


@pytest.mark.parametrize(("path", "status"), [(b"/ws", 404), (b"/tasks", 401)])
def test_a_websocket_upgrade_is_answered_as_plain_http_json(
    server: LiveServer, path: bytes, status: int
) -> None:
    # The service has no WebSocket route: the request is an ordinary one, answered by the
    # API with its JSON, request id and access line (not a plain-text 403 from the server).
    request = (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or len(_head_and_body(answer)[2]) < int(
            _head_and_body(answer)[1].get(b"content-length", b"0")
        ):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    status_line, headers, body = _head_and_body(answer)
    assert status_line.startswith(b"HTTP/1.1 %d " % status), answer
    assert headers[b"content-type"] == b"application/json"
    assert "detail" in json.loads(body)
    assert _access_line(server, headers[b"x-request-id"])["status"] == status
