"""The refused-request log's writer: refusals are buffered in the process and written by
refused.lua behind the answers, never in their way (docs/dashboard.md).

A refusal is answered at once; its entry joins the tenant's buffer, and one script call per
tenant writes every buffered entry and its per-minute count, one call in flight at a time: a
refusal costs at most one Redis command, fewer under a flood, whose entries beyond the newest
REFUSED_MAX of a tenant are dropped in the process (the log keeps no more). Redis being away
loses the entries of that moment, never an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque

import orjson
from redis import exceptions as redis_errors

from gateway.clock import now_ms
from gateway.redis.arguments import RefusedArgs
from gateway.redis.keys import REFUSED_MAX
from gateway.redis.store import Store, StoreUnavailable

log = logging.getLogger("gateway")
# What a write of the log may fail with: it is given up, the answers were sent already.
NOT_WRITTEN = (StoreUnavailable, redis_errors.RedisError, redis_errors.RedisClusterException)


class Pending:
    __slots__ = ("entries", "counts")

    def __init__(self) -> None:
        self.entries: deque[bytes] = deque(maxlen=REFUSED_MAX)
        self.counts: Counter[str] = Counter()  # "<minute>|<error code>" -> refusals


class RefusalLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: dict[str, Pending] = {}  # tenant prefix -> its unwritten refusals
        self._task: asyncio.Task[None] | None = None

    def add(self, prefix: str, at: int, code: str, entry: bytes) -> None:
        """Log refusal `entry` (JSON) of error `code` at `at` (ms) for the tenant of `prefix`."""
        pending = self._pending.get(prefix)
        if pending is None:
            pending = self._pending[prefix] = Pending()
        pending.entries.append(entry)
        pending.counts[f"{at // 60_000}|{code}"] += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                for prefix, pending in batch.items():
                    items = [orjson.dumps(pending.counts), *pending.entries]
                    try:
                        await self.store.run("refused", RefusedArgs(prefix), now_ms(), items)
                    except NOT_WRITTEN as exc:
                        log.warning("refused requests not logged: %s", exc)
        finally:
            self._task = None

    async def drain(self) -> None:
        """Wait for the entries buffered so far to be written (shutdown)."""
        while self._task is not None:
            await asyncio.shield(self._task)
