"""Step 1: the HTTP/1.1 protocol the service is served with: uvicorn's httptools protocol,
with a bound on a request's head and JSON for what the parser refuses.

- httptools keeps a request's headers in memory until they are complete, however long
  they grow; here a head over MAX_HEADER_BYTES is answered 431 (JSON) and the connection
  closed, so what one connection can make the server hold stays bounded.
- A request the parser refuses (a malformed request line or header, conflicting framing
  such as Content-Length with Transfer-Encoding) is answered 400 with a JSON body and
  `Connection: close`, like every other error of the API, instead of uvicorn's plain text.

Select it with `uvicorn --http service.edge.step1_protocol:EdgeHttpProtocol`
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


class EdgeHttpProtocol(HttpToolsProtocol):
    _in_head = True
    _head_bytes = 0
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counting = self._in_head
        super().data_received(data)
        if counting and self._in_head and not self._refused:
            # The head is still incomplete after this chunk: all of it belongs to the head.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self.logger.warning("Request headers over %d bytes: refused", MAX_HEADER_BYTES)
                self._refuse(_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what httptools refuses; `msg` is its plain-text reason.
        self._refuse(_MALFORMED)

    def _refuse(self, answer: bytes) -> None:
        self._refused = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
