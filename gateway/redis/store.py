"""The Redis side: one client, the Lua scripts, and the ingest micro-batcher.

Scripts are sent by SHA (EVALSHA); after a Redis restart has emptied the script cache the first
NOSCRIPT answer is retried once with the full text, which caches it again. Connection trouble of
any kind becomes `StoreUnavailable`, which the API answers with 503 + Retry-After: a request is
never told its data is stored unless Redis said so.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.model.events import ENVELOPE
from gateway.model.identity import PUBLIC_NAMES
from gateway.redis.keys import CONTACT_SUFFIXES, EVENT_CODES, REACHABLE_KINDS

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


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    text: str
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        folder = resources.files("gateway.redis") / "lua"
        # Further libraries (lib_<topic>.lua) follow lib.lua, in name order.
        extra = sorted(f.name for f in folder.iterdir() if f.name.startswith("lib_"))
        parts = ["lib.lua", *extra, f"{name}.lua"]
        text = "\n".join((folder / part).read_text() for part in parts)
        for constant, value in lua_tables().items():
            text = text.replace("{{" + constant + "}}", value)
        return cls(name, text, hashlib.sha1(text.encode()).hexdigest())


def lua_tables() -> dict[str, str]:
    """Python constants the scripts need as Lua text (kept in one place, never copied by hand)."""
    suffixes = ", ".join(f"'{suffix}'" for suffix in CONTACT_SUFFIXES)
    reachable = ", ".join(f"{kind} = true" for kind in sorted(REACHABLE_KINDS))
    names = ", ".join(f"{kind} = '{name}'" for kind, name in PUBLIC_NAMES.items())
    codes = ", ".join(f"{ty} = '{code}'" for ty, code in EVENT_CODES.items())
    return {
        "CONTACT_SUFFIXES": "{" + suffixes + "}",
        "REACHABLE_KINDS": "{" + reachable + "}",
        "PUBLIC_NAMES": "{" + names + "}",
        "EVENT_CODES": "{" + codes + "}",
        # The ingest envelope's places (events.ENVELOPE): `local ID, DEDUP, ... = 1, 2, ...`.
        "ENVELOPE_NAMES": ", ".join(place.upper() for place in ENVELOPE),
        "ENVELOPE_PLACES": ", ".join(str(n) for n in range(1, len(ENVELOPE) + 1)),
    }


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


class Store:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.scripts: dict[str, Script] = {}

    def script(self, name: str) -> Script:
        if name not in self.scripts:
            self.scripts[name] = Script.load(name)
        return self.scripts[name]

    async def run(self, name: str, args: Sequence[Any]) -> Any:
        """One script call, outside the batcher (rare paths: orders, detector, webhooks)."""
        script = self.script(name)
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

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except UNAVAILABLE_ERRORS:
            return False

    async def close(self) -> None:
        await self.redis.aclose()


def script_args(header: Sequence[Any], items: Sequence[tuple[bytes, bytes]]) -> list[Any]:
    """ARGV of one ingest.lua call: `header`, then every envelope in one JSON array and every raw
    event in one newline-separated string (orjson never writes a bare newline). Two arguments
    instead of two per event: packing a command costs redis-py time per argument."""
    heads = b"[" + b",".join([envelope for envelope, _ in items]) + b"]"
    return [*header, heads, b"\n".join([raw for _, raw in items])]


class IngestBatcher:
    """Merges the ingest script calls of concurrent requests into shared script calls.

    A request's events are queued and flushed on the next turn of the event loop together with
    every other call queued meanwhile; while `max_in_flight` flushes are waiting on Redis, new calls
    accumulate and go out together when one returns. Calls of the same tenant are merged into one
    script call of up to `max_items` events (ingest.lua stores a list of events and answers one
    result per event): one EVALSHA, one reply and one Lua set-up instead of one per request is most
    of what makes small requests cheap, on both sides. Each caller still awaits the answer to its
    own events, so nobody is acknowledged before Redis has stored them.
    """

    def __init__(
        self,
        store: Store,
        script: str = "ingest",
        max_in_flight: int = 2,
        max_items: int = 500,
    ) -> None:
        self.store = store
        self.script = store.script(script)
        self.max_in_flight = max_in_flight
        self.max_items = max_items
        self._pending: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self, header: Sequence[Any], items: Sequence[tuple[bytes, bytes]]
    ) -> asyncio.Future[Any]:
        """Store `items` ((envelope, raw) per event): a future of one result per item.

        `header` is the script's fixed ARGV: the tenant prefix, the receive time in ms, then
        limits. Headers equal but for the time are merged; the merged call uses the latest time.
        A plain function returning the future, not a coroutine: one frame less to create and
        resume per request.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((header, items, future))
        if not self._scheduled and self._in_flight < self.max_in_flight:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _merge(
        self, batch: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
    ) -> list[tuple[list[Any], list[Any], list[tuple[asyncio.Future[Any], int, int]]]]:
        """(header, items, [(future, first, end)]) per script call: each waiter's slice."""
        calls: list[tuple[list[Any], list[Any], list[tuple[asyncio.Future[Any], int, int]]]] = []
        open_calls: dict[tuple[Any, ...], int] = {}
        for header, items, future in batch:
            group = (header[0], *header[2:])
            index = open_calls.get(group)
            if index is not None:
                merged_header, merged, waiters = calls[index]
                first = len(merged)
                if first + len(items) <= self.max_items:
                    merged_header[1] = max(merged_header[1], header[1])
                    merged.extend(items)
                    waiters.append((future, first, first + len(items)))
                    continue
            open_calls[group] = len(calls)
            calls.append((list(header), list(items), [(future, 0, len(items))]))
        return calls

    async def _send(
        self, batch: list[tuple[Sequence[Any], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        calls = self._merge(batch)
        try:
            results = await self._execute([script_args(h, items) for h, items, _ in calls])
            for (_, _, waiters), result in zip(calls, results, strict=True):
                for future, first, end in waiters:
                    if not future.done():
                        if isinstance(result, BaseException):
                            future.set_exception(result)
                        else:
                            future.set_result(result[first:end])
        except BaseException as exc:  # noqa: B036 - every waiter must hear of the failure
            error = StoreUnavailable(str(exc)) if is_unavailable(exc) else exc
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._in_flight -= 1
            if self._pending and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    async def _execute(self, calls: list[Sequence[Any]]) -> list[Any]:
        sha = self.script.sha
        results = await self._round_trip([("EVALSHA", sha, 0, *args) for args in calls])
        missing = [i for i, r in enumerate(results) if isinstance(r, redis_errors.NoScriptError)]
        if missing:
            # Redis restarted and lost its script cache: NOSCRIPT means the call did not run.
            text = self.script.text
            retried = await self._round_trip([("EVAL", text, 0, *calls[i]) for i in missing])
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        for i, result in enumerate(results):
            # e.g. LOADING while Redis replays its AOF, or OOM while its memory is full
            if isinstance(result, BaseException) and is_unavailable(result):
                results[i] = StoreUnavailable(str(result))
        return results

    async def _round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` together on one pooled connection; one reply or error per command.

        redis-py's Pipeline object costs about 30 µs more CPU per flush than this (measured), and
        every ~20 requests make a flush. Any failure part-way leaves the connection in an unknown
        state, so it is dropped rather than returned to the pool.
        """
        pool = self.store.redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except redis_errors.ResponseError as error:
                    replies.append(error)
            return replies
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    async def drain(self) -> None:
        """Wait for every queued and in-flight call (clean shutdown)."""
        while self._pending or self._tasks:
            if self._pending and not self._scheduled and self._in_flight < self.max_in_flight:
                self._flush()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await asyncio.sleep(0)
