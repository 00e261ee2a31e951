"""Entity tags of tasks and the conditional-request headers that name them (RFC 9110 §13).

A task's ETag is strong and made from its id and version: every write raises the version,
so every write changes the ETag, however close together two writes come.
"""

import re

# What task_etag writes: canonical digits, at most 19 (ids and versions are bigint). A tag
# in any other spelling is not one of ours and matches nothing (tags compare as strings),
# and is never parsed as a number (Python refuses to parse more than 4,300 digits).
_TAG = re.compile(r'^"([1-9][0-9]{0,18})-([1-9][0-9]{0,18})"$', re.ASCII)
MAX_VERSION = 2**63 - 1


def task_etag(task_id: int, version: int) -> str:
    return f'"{task_id}-{version}"'


def _entries(header: str) -> list[str]:
    # Our tags hold no commas, so a tag with one could not match anyway.
    return [entry.strip() for entry in header.split(",") if entry.strip()]


def if_match_versions(header: str | None, *, task_id: int) -> tuple[int, ...] | None:
    """The versions of this task that `If-Match` accepts; None when any version will do
    (no header, or `*`: the write itself finds whether the task exists). Weak tags never
    match: If-Match compares strongly."""
    if header is None:
        return None
    entries = _entries(header)
    if "*" in entries:
        return None
    versions = []
    for entry in entries:
        match = _TAG.match(entry)
        # A version beyond bigint can match no row, and must not reach PostgreSQL.
        if match and int(match[1]) == task_id and int(match[2]) <= MAX_VERSION:
            versions.append(int(match[2]))
    return tuple(versions)


def none_match(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` lets the request through: False when it names this ETag
    (weakly compared, as RFC 9110 says for If-None-Match) or is `*`."""
    if header is None:
        return True
    return not any(entry == "*" or entry.removeprefix("W/") == etag for entry in _entries(header))
