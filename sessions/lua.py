"""Lua scripts sent with EVAL.

redis-py's `Script` sends SCRIPT EXISTS before every pipeline that holds one: an extra
round trip on the hot path. EVAL carries the source instead (Redis caches the compiled
script by its hash, so it is compiled once), and needs no reloading after a Redis restart.
"""

from collections.abc import Sequence
from typing import Any


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, client: Any, keys: Sequence[str], args: Sequence[str | float]) -> Any:
        """Run on `client`; on a pipeline the result comes from its `execute()`."""
        return client.eval(self.source, len(keys), *keys, *args)
