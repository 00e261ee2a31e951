"""Measure argon2id hash and verify time with the service's parameters on this machine.

python -m scripts.hash_time [--rounds 20]
"""

import argparse
import statistics
import time

from sessions.passwords import PasswordHasher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    hasher = PasswordHasher(concurrency=1)
    hashes, verifies = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        password_hash = hasher.hash("correct horse battery staple")
        hashes.append(time.perf_counter() - start)
        start = time.perf_counter()
        hasher.verify("correct horse battery staple", password_hash)
        verifies.append(time.perf_counter() - start)
    print(f"argon2id m=19 MiB t=2 p=1, {rounds} rounds")
    print(f"hash   median {statistics.median(hashes) * 1000:.1f} ms")
    print(f"verify median {statistics.median(verifies) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
