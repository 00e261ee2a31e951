"""A clock the tests move by hand, for the session store and the token codec, so that a
test of a timeout skips ahead instead of sleeping."""

import time


class FakeClock:
    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
