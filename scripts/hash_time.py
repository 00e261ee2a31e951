"""Measure argon2id with the service's parameters on this machine: the median time of one
hash and one verify, and how many verifies per second all cores manage at once.

python -m scripts.hash_time [--rounds 20]
"""

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from sessions.passwords import PasswordHasher

PASSWORD = "correct horse battery staple"  # noqa: S105 (a sample to hash)


def median_seconds(action: str, rounds: int) -> float:
    """Median time of one hash or verify, run alone."""
    hasher = PasswordHasher(concurrency=1)
    password_hash = hasher.hash(PASSWORD)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        if action == "hash":
            hasher.hash(PASSWORD)
        else:
            hasher.verify(PASSWORD, password_hash)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parallel_verifies_per_second(threads: int, rounds: int) -> float:
    """Verifies per second with `threads` running at once (argon2 releases the GIL)."""
    hasher = PasswordHasher(concurrency=threads)
    password_hash = hasher.hash(PASSWORD)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: hasher.verify(PASSWORD, password_hash), range(rounds * threads)))
    return rounds * threads / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    cores = os.cpu_count() or 1
    print(f"argon2id m=19 MiB t=2 p=1, {rounds} rounds")
    print(f"hash   median {median_seconds('hash', rounds) * 1000:.1f} ms")
    print(f"verify median {median_seconds('verify', rounds) * 1000:.1f} ms")
    print(f"{cores} verifies at once: {parallel_verifies_per_second(cores, rounds):.1f}/s")


if __name__ == "__main__":
    main()
