"""argon2id hashing and its per-process concurrency cap; the policy's schema pattern."""

import concurrent.futures
import re
import threading
import time

import pytest
from pwdlib import PasswordHash

from sessions.passwords import PasswordHasher
from sessions.policy import SCHEMA_PATTERN, WHITESPACE, password_problem


def test_hash_is_argon2id_and_verifies() -> None:
    hasher = PasswordHasher(concurrency=1)
    password_hash = hasher.hash("correct horse battery")
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify("correct horse battery", password_hash) == (True, None)
    assert hasher.verify("wrong", password_hash)[0] is False


def test_unknown_user_still_pays_for_a_verification() -> None:
    hasher = PasswordHasher(concurrency=1)
    password_hash = hasher.hash("x" * 12)
    start = time.perf_counter()
    hasher.verify("x" * 12, password_hash)
    known = time.perf_counter() - start
    start = time.perf_counter()
    assert hasher.verify("x" * 12, None) == (False, None)
    unknown = time.perf_counter() - start
    assert unknown > known * 0.5


def test_changed_parameters_ask_for_a_rehash() -> None:
    old = PasswordHasher(concurrency=1, memory_cost=8192, time_cost=1).hash("correct horse")
    matches, new_hash = PasswordHasher(concurrency=1).verify("correct horse", old)
    assert matches
    assert new_hash is not None and "m=19456,t=2" in new_hash


class CountingBackend:
    """Wraps the real argon2 backend and records how many hashes ran at once."""

    def __init__(self) -> None:
        self.real = PasswordHash.recommended()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def hash(self, password: str) -> str:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # long enough for every thread to pile up
            return self.real.hash(password)
        finally:
            with self.lock:
                self.running -= 1

    def verify(self, password: str, password_hash: str) -> bool:
        return self.real.verify(password, password_hash)


def _most_at_once(concurrency: int, threads: int = 6) -> int:
    backend = CountingBackend()
    hasher = PasswordHasher(concurrency=concurrency, backend=backend)  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(hasher.hash, ["p" * 10] * threads))
    return backend.most


def test_concurrent_hashes_are_capped_per_process() -> None:
    assert _most_at_once(concurrency=1) == 1
    assert _most_at_once(concurrency=2) == 2
    assert _most_at_once(concurrency=6) > 2  # without a tight cap they do pile up


def test_the_policy_s_whitespace_is_python_s() -> None:
    whitespace = [chr(code) for code in range(0x110000) if chr(code).isspace()]
    assert re.fullmatch(f"[{WHITESPACE}]+", "".join(whitespace))
    assert all(password_problem(c * 4 + " " * 4) for c in whitespace)


@pytest.mark.parametrize("password", ["a" * 9, " " * 9, "\u3000\t" * 5, "🔑" * 8])
def test_the_schema_pattern_refuses_what_the_policy_refuses(password: str) -> None:
    assert password_problem(password) is not None
    assert re.search(SCHEMA_PATTERN, password) is None


@pytest.mark.parametrize("password", ["aaaaaaab", "  padded  ", "correct horse battery"])
def test_the_schema_pattern_takes_what_the_policy_takes(password: str) -> None:
    assert password_problem(password) is None
    assert re.search(SCHEMA_PATTERN, password) is not None
