"""Audit events: one JSON log line each (logger "audit"); ended sessions are counted too."""

from typing import Any

from service import metrics
from service.logging import get_logger

audit = get_logger("audit")


def sessions_revoked(
    reason: str, *, user_id: int, count: int = 1, warn: bool = False, **fields: Any
) -> None:
    """`count` sessions of a user ended for `reason` (logout, evicted, password_change...)."""
    log = audit.warning if warn else audit.info
    log("session_revoked", reason=reason, user_id=user_id, count=count, **fields)
    if count:
        metrics.SESSION_REVOCATIONS.labels(reason=reason).inc(count)
