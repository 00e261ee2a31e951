"""The HTTP/1.1 protocol the service is served with: uvicorn's httptools protocol,
with a bound on a request's head and JSON for what the parser refuses.

- httptools keeps a request's headers in memory until they are complete, however long
  they grow; here a head over MAX_HEADER_BYTES is answered 431 (JSON) and the connection
  closed, so what one connection can make the server hold stays bounded.
- A request the parser refuses (a malformed request line or header, conflicting framing
  such as Content-Length with Transfer-Encoding) is answered 400 with a JSON body and
  `Connection: close`, like every other error of the API, instead of uvicorn's plain text.
- A request's head must arrive within REQUEST_HEAD_TIMEOUT_SECONDS of the connection's
  opening or of the previous response (uvicorn has no such bound: a client sending one
  header line every few seconds would hold its connection for ever): else 408 (JSON) and
  the connection closed; a connection that sent nothing is closed without an answer.
- Each of these answers carries an X-Request-ID and writes one access-log line, like the
  answers of the app (the middleware never sees these requests).

Select it with `uvicorn --http service.edge.protocol:EdgeHttpProtocol`
(scripts/serve.py does).
"""

import asyncio
import json
import secrets
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service import metrics
from service.config import get_settings
from service.logging import get_logger

MAX_HEADER_BYTES = 16 * 1024
HEADERS_TOO_LARGE = "Request headers too large: at most 16 KiB in total"
MALFORMED = "Malformed HTTP request: the request line, a header or the message framing is invalid"
HEAD_TIMEOUT = "Request head not received in time: send it at once"
# What a refused request's access line shows of its URL: enough to recognise it.
LOGGED_URL_BYTES = 256
access_log = get_logger("access")


def _refusal(status_line: bytes, detail: str, request_id: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return b"".join(
        [
            status_line,
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-request-id: " + request_id.encode() + b"\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"cache-control: no-store\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_STATUS_LINES = {
    400: b"HTTP/1.1 400 Bad Request\r\n",
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class HeadTooLarge(Exception):
    """Stops the parser: the head went past MAX_HEADER_BYTES (the answer is on its way)."""


class EdgeHttpProtocol(HttpToolsProtocol):
    # The head's bytes, counted twice over: as the parser reads its parts (a whole head in
    # one read), and as chunks arrive while it is incomplete (a head the parser keeps
    # buffering, such as one endless header line).
    _in_head = True
    _parsed_bytes = 0
    _buffered_bytes = 0
    _refused = False
    # The head's deadline, while one is awaited; and since when it is (for the access line).
    _head_timer: asyncio.TimerHandle | None = None
    _awaiting_since = 0.0
    _head_timeout_seconds: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head and not self._refused:
            self._buffered_bytes += len(data)
            if self._buffered_bytes > MAX_HEADER_BYTES:
                self._refuse_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed_bytes = self._buffered_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # as on the wire: "name: value\r\n"
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn now waits for the next request (its keep-alive timer runs) unless a
        # pipelined one, whose head is complete, starts instead.
        if self.timeout_keep_alive_task is not None:
            self._await_head()

    def _unsupported_upgrade_warning(self) -> None:
        # Served with `--ws none` (scripts/serve.py): an upgrade request is an ordinary
        # request, answered by the API, so uvicorn's advice to install a WebSocket library
        # would only mislead whoever reads the log.
        pass

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what httptools refuses; `msg` is its plain-text reason.
        self._refuse(400, MALFORMED)

    def _count(self, size: int) -> None:
        self._parsed_bytes += size
        if self._parsed_bytes > MAX_HEADER_BYTES:
            self._refuse_too_large()
            raise HeadTooLarge()

    def _refuse_too_large(self) -> None:
        self.logger.warning("Request headers over %d bytes: refused", MAX_HEADER_BYTES)
        self._refuse(431, HEADERS_TOO_LARGE)

    def _await_head(self) -> None:
        if EdgeHttpProtocol._head_timeout_seconds is None:
            # Read once per process, when the first connection comes: the app that
            # validated the settings is built by then.
            EdgeHttpProtocol._head_timeout_seconds = get_settings().request_head_timeout_seconds
        self._stop_head_timer()
        self._awaiting_since = time.perf_counter()
        self._head_timer = self.loop.call_later(
            EdgeHttpProtocol._head_timeout_seconds, self._head_timed_out
        )

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and self._buffered_bytes:
            self._refuse(408, HEAD_TIMEOUT)
        elif self.transport is not None and not self.transport.is_closing():
            self._refused = True
            self.transport.close()  # nothing of a request came: nothing to answer

    def _refuse(self, status: int, detail: str) -> None:
        if self._refused:
            return
        self._refused = True
        self._stop_head_timer()
        request_id = secrets.token_hex(16)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_refusal(_STATUS_LINES[status], detail, request_id))
            self.transport.close()
        self._log_refusal(status, request_id)

    def _log_refusal(self, status: int, request_id: str) -> None:
        """The access line the middleware writes for the app's answers, for this one."""
        url = getattr(self, "url", b"")  # what the parser gave of it, if anything
        method: str | None = None
        if url:  # the parser read a method before it: httptools' answer means something
            try:
                method = self.parser.get_method().decode("latin-1")
            except Exception:  # noqa: BLE001 (the parser failed in between)
                method = None
        seconds = time.perf_counter() - self._awaiting_since
        access_log.info(
            "request",
            request_id=request_id,
            method=method,
            path=url.partition(b"?")[0][:LOGGED_URL_BYTES].decode("latin-1"),
            status=status,
            duration_ms=round(seconds * 1000, 2),
            client_ip=self.client[0] if self.client else "unknown",
            user_id=None,
            session_id=None,
        )
        # Counted like the app's answers, under the route label of what matched nothing.
        counter, histogram = metrics.request_series(method or "UNKNOWN", None, status)
        counter.inc()
        histogram.observe(seconds)
