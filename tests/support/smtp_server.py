"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.live_server import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0  # answer this many deliveries with a temporary failure
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            if self.refuse:
                self.refuse -= 1
                return "451 Try again later"
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(parsed)
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = _Inbox()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages_to(self, address: str, *, subject: str | None = None) -> list[EmailMessage]:
        """The messages to `address` (with that subject, if given), in order of arrival."""
        return [
            m
            for m in self.inbox.messages
            if m["To"] == address and (subject is None or m["Subject"] == subject)
        ]

    def wait_for(
        self, address: str, count: int = 1, timeout: float = 15, *, subject: str | None = None
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(found := self.messages_to(address, subject=subject)) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} message(s) to {address} within {timeout} s")
