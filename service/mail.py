"""Outgoing mail: SMTP delivery, and an outbox that sends off the request path.

With no `SMTP_HOST`, development and test write each message to the log instead (marked
`mail_not_sent`); production logs an error without the message, which may hold a token.
"""

import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

from service.logging import get_logger

log = get_logger("mail")
SEND_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    username: str
    password: str
    tls: Literal["starttls", "ssl", "none"]
    sender: str
    timeout_seconds: float = 10


class Mailer:
    def __init__(self, smtp: SmtpSettings, *, log_instead: bool) -> None:
        self._smtp = smtp
        # Without SMTP_HOST: write messages to the log (development) or refuse (production).
        self._log_instead = log_instead

    def send(self, *, to: str, subject: str, body: str, purpose: str) -> bool:
        """Deliver one plain-text message, retrying a bounded number of times. Failures
        are logged with the recipient's purpose, never the body (it may hold a token)."""
        if not self._smtp.host:
            if self._log_instead:
                log.warning("mail_not_sent", reason="SMTP_HOST is not set", to=to,
                            subject=subject, body=body, purpose=purpose)  # fmt: skip
            else:
                log.error("mail_not_configured", purpose=purpose, detail="set SMTP_HOST")
            return False
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._smtp.sender, to, subject
        message.set_content(body)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                self._deliver(message)
            except (OSError, smtplib.SMTPException) as error:
                log.warning("mail_send_failed", purpose=purpose, attempt=attempt,
                            attempts=SEND_ATTEMPTS, error=type(error).__name__)  # fmt: skip
                if attempt < SEND_ATTEMPTS:
                    time.sleep(RETRY_DELAY_SECONDS * attempt)
            else:
                log.info("mail_sent", purpose=purpose, attempt=attempt)
                return True
        log.error("mail_gave_up", purpose=purpose, attempts=SEND_ATTEMPTS)
        return False

    def _deliver(self, message: EmailMessage) -> None:
        smtp = self._smtp
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if smtp.tls == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            if smtp.tls == "starttls":
                client.starttls(context=context)
            if smtp.username:
                client.login(smtp.username, smtp.password)
            client.send_message(message)


class Outbox:
    """Work that must not hold up a response (sending mail), done in order by one daemon
    thread per worker process. Bounded: when full, new work is dropped and logged."""

    def __init__(self, *, capacity: int = 1000) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            log.error("outbox_full", detail="a job was dropped")

    def close(self, timeout: float = 10) -> None:
        """Finish what was submitted (for up to `timeout` seconds), then stop."""
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("outbox_job_failed")
