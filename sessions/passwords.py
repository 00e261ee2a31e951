"""argon2id password hashing with a per-process cap on concurrent hashes."""

import threading

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class PasswordHasher:
    """argon2id with OWASP's parameters by default (19 MiB, 2 iterations, 1 lane).

    Hashes and verifies passwords; at most `concurrency` at once in this process,
    so a login storm queues instead of exhausting memory and CPU."""

    def __init__(
        self,
        *,
        concurrency: int,
        memory_cost: int = 19_456,
        time_cost: int = 2,
        backend: PasswordHash | None = None,
    ) -> None:
        argon2 = Argon2Hasher(memory_cost=memory_cost, time_cost=time_cost, parallelism=1)
        self._hasher = backend or PasswordHash((argon2,))
        self._slots = threading.BoundedSemaphore(concurrency)
        # Unknown emails are verified against this, so they cost as much as known ones.
        self._dummy_hash = self._hasher.hash("dummy password for timing equalisation")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Return (matches, new_hash); new_hash is set when the parameters changed."""
        with self._slots:
            if password_hash is None:
                self._hasher.verify(password, self._dummy_hash)
                return False, None
            return self._hasher.verify_and_update(password, password_hash)
