"""The HTTP/1.1 protocol the service is served with: uvicorn's httptools protocol,
with a bound on a request's head and JSON for what the parser refuses.

- httptools keeps a request's headers in memory until they are complete, however long
  they grow; here a head over MAX_HEADER_BYTES is answered 431 (JSON) and the connection
  closed, so what one connection can make the server hold stays bounded.
- A request the parser refuses (a malformed request line or header, conflicting framing
  such as Content-Length with Transfer-Encoding) is answered 400 with a JSON body and
  `Connection: close`, like every other error of the API, instead of uvicorn's plain text.

Select it with `uvicorn --http service.edge.protocol:EdgeHttpProtocol`
(scripts/serve.py does).
"""

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 16 * 1024
HEADERS_TOO_LARGE = "Request headers too large: at most 16 KiB in total"
MALFORMED = "Malformed HTTP request: the request line, a header or the message framing is invalid"


def _refusal(status_line: bytes, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return b"".join(
        [
            status_line,
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"cache-control: no-store\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_TOO_LARGE = _refusal(b"HTTP/1.1 431 Request Header Fields Too Large\r\n", HEADERS_TOO_LARGE)
_MALFORMED = _refusal(b"HTTP/1.1 400 Bad Request\r\n", MALFORMED)


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
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what httptools refuses; `msg` is its plain-text reason.
        self._refuse(_MALFORMED)

    def _count(self, size: int) -> None:
        self._parsed_bytes += size
        if self._parsed_bytes > MAX_HEADER_BYTES:
            self._refuse_too_large()
            raise HeadTooLarge()

    def _refuse_too_large(self) -> None:
        self.logger.warning("Request headers over %d bytes: refused", MAX_HEADER_BYTES)
        self._refuse(_TOO_LARGE)

    def _refuse(self, answer: bytes) -> None:
        if self._refused:
            return
        self._refused = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
