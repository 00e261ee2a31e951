"""Lua scripts queued on a pipeline, sent with EVAL.

redis-py's `Script` sends SCRIPT EXISTS before every pipeline that holds one: an extra
round trip. EVAL carries the source instead (Redis caches the compiled script by its hash,
so it is compiled once), and needs no reloading after a Redis restart. A script that runs
on its own (the session check, a rate-limit hit) is redis-py's `Script`: EVALSHA, and the
script loaded again when the server does not know it.
"""

from collections.abc import Sequence
from typing import Any


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, client: Any, keys: Sequence[str], args: Sequence[str | float]) -> Any:
        """Run on `client`; on a pipeline the result comes from its `execute()`."""
        return client.eval(self.source, len(keys), *keys, *args)
