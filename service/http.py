"""The HTTP/1.1 protocol the service is served with: uvicorn's httptools protocol, with a
bound on a request's head (request line and headers).

httptools keeps a request's headers in memory until they are complete, however long they
grow; here a head over MAX_HEADER_BYTES is answered 431 (JSON) and the connection closed,
so what one connection can make the server hold stays bounded. Select it with
`uvicorn --http service.http:BoundedHttpToolsProtocol` (scripts/serve.py does).
"""

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 16 * 1024
_BODY = json.dumps({"detail": "Request headers too large: at most 16 KiB in total"}).encode()
_REFUSAL = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(_BODY)).encode() + b"\r\n",
        b"x-content-type-options: nosniff\r\n",
        b"connection: close\r\n\r\n",
        _BODY,
    ]
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _in_head = True
    _head_bytes = 0
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counting = self._in_head
        super().data_received(data)
        if counting and self._in_head:
            # The head is still incomplete after this chunk: all of it belongs to the head.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("Request headers over %d bytes: refused", MAX_HEADER_BYTES)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_REFUSAL)
            self.transport.close()
