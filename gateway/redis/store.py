"""The Redis side: one client and the Lua scripts run through it (scripts.py; the ingest
micro-batcher is batcher.py).

Scripts are sent by SHA (EVALSHA); after a Redis restart has emptied the script cache the first
NOSCRIPT answer is retried once with the full text, which caches it again. Connection trouble of
any kind becomes `StoreUnavailable`, which the API answers with 503 + Retry-After: a request is
never told its data is stored unless Redis said so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.redis.arguments import ScriptArgs
from gateway.redis.keys import TenantKeys
from gateway.redis.reads import Reads
from gateway.redis.scripts import Script

# Errors that mean "Redis is not there right now", as opposed to a bug in a command.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    OSError,
)


# Errors with which Redis refuses a write it would take later: memory full (maxmemory with
# noeviction; inside a script only its first write can be refused, so nothing is half-written) and
# a failing disk (MISCONF). Like an outage, they are a 503 to retry, not a bug.
REFUSED_WRITES = ("OOM command not allowed", "MISCONF ")


class StoreUnavailable(Exception):
    pass


# redis-py turns a plain OOM reply into OutOfMemoryError, taking "OOM" out of its message; an
# error inside a script keeps the words (REFUSED_WRITES).
_REFUSED_CLASSES = (*UNAVAILABLE_ERRORS, redis_errors.OutOfMemoryError)


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, _REFUSED_CLASSES):
        return True
    message = str(error)
    return isinstance(error, redis_errors.ResponseError) and any(
        refused in message for refused in REFUSED_WRITES
    )


def connect(url: str, max_connections: int = 64) -> aioredis.Redis:
    # No automatic retries: a write retried after a lost reply could be stored twice. A failed
    # call is answered 503 and the client retries (with its eventId, idempotently).
    return aioredis.Redis.from_url(
        url,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        health_check_interval=15,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


class Store(Reads):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.scripts: dict[str, Script] = {}

    def script(self, name: str) -> Script:
        if name not in self.scripts:
            self.scripts[name] = Script.load(name)
        return self.scripts[name]

    async def run(self, name: str, call: ScriptArgs, now: int, items: Sequence[Any] = ()) -> Any:
        """One call of script `name` at `now` (ms), outside the batcher (rare paths: rate limits,
        orders, detector, webhooks): Redis' answer, which results.py reads."""
        script = self.script(name)
        args = call.args(now, items)
        try:
            try:
                return await self.redis.execute_command(  # type: ignore[no-untyped-call]
                    "EVALSHA", script.sha, 0, *args
                )
            except redis_errors.NoScriptError:
                return await self.redis.execute_command(  # type: ignore[no-untyped-call]
                    "EVAL", script.text, 0, *args
                )
        except (redis_errors.RedisError, OSError) as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    async def create_trigger_group(self, keys: TenantKeys, group: str) -> None:
        """A consumer group of the tenant's trigger stream, reading from its end (the stream is
        made if need be); a group that exists already is left as it is."""
        try:
            await self.redis.xgroup_create(keys.triggers, group, id="$", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except UNAVAILABLE_ERRORS:
            return False

    async def close(self) -> None:
        await self.redis.aclose()
