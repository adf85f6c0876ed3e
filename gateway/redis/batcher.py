"""The ingest micro-batcher: concurrent requests' events stored by shared ingest.lua calls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster

from gateway.redis.arguments import TenantLimits
from gateway.redis.results import EventResult, event_results
from gateway.redis.store import UNAVAILABLE_ERRORS, Store, StoreUnavailable, is_unavailable

Items = Sequence[tuple[bytes, bytes]]  # (envelope, raw) per event
Waiter = tuple[asyncio.Future[list[EventResult]], int, int]  # a caller's future and its slice
Pending = tuple[TenantLimits, int, Items, asyncio.Future[list[EventResult]]]


def ingest_items(items: Items) -> list[bytes]:
    """The items of one ingest.lua call: every envelope in one JSON array and every raw event in
    one newline-separated string (orjson never writes a bare newline). Two arguments instead of
    two per event: packing a command costs redis-py time per argument."""
    heads = b"[" + b",".join([envelope for envelope, _ in items]) + b"]"
    return [heads, b"\n".join([raw for _, raw in items])]


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
        self._pending: list[Pending] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self, limits: TenantLimits, now: int, items: Items
    ) -> asyncio.Future[list[EventResult]]:
        """Store `items` of the tenant of `limits`, received at `now` (ms): a future of one result
        per item.

        Calls with the same limits are merged; the merged call uses the latest time. A plain
        function returning the future, not a coroutine: one frame less to create and resume per
        request.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[EventResult]] = loop.create_future()
        self._pending.append((limits, now, items, future))
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

    def _merge(self, batch: list[Pending]) -> list[tuple[list[Any], list[Waiter]]]:
        """(ARGV, [(future, first, end)]) per script call: each waiter's slice of its results."""
        calls: list[tuple[TenantLimits, int, list[tuple[bytes, bytes]], list[Waiter]]] = []
        open_calls: dict[TenantLimits, int] = {}
        for limits, now, items, future in batch:
            index = open_calls.get(limits)
            if index is not None:
                _, latest, merged, waiters = calls[index]
                first = len(merged)
                if first + len(items) <= self.max_items:
                    calls[index] = (limits, max(latest, now), merged, waiters)
                    merged.extend(items)
                    waiters.append((future, first, first + len(items)))
                    continue
            open_calls[limits] = len(calls)
            calls.append((limits, now, list(items), [(future, 0, len(items))]))
        return [
            (limits.args(now, ingest_items(items)), waiters)
            for limits, now, items, waiters in calls
        ]

    async def _send(self, batch: list[Pending]) -> None:
        try:
            calls = self._merge(batch)
            results = await self._execute([args for args, _ in calls])
            for (_, waiters), result in zip(calls, results, strict=True):
                if isinstance(result, BaseException):
                    for future, _, _ in waiters:
                        if not future.done():
                            future.set_exception(result)
                    continue
                parsed = event_results(result)
                for future, first, end in waiters:
                    if not future.done():
                        future.set_result(parsed[first:end])
        except BaseException as exc:  # noqa: B036 - every waiter must hear of the failure
            error = StoreUnavailable(str(exc)) if is_unavailable(exc) else exc
            for _, _, _, future in batch:
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
        # KEYS[1] is the call's tenant prefix (args[0]): a cluster routes the call by its slot.
        sha = self.script.sha
        results = await self._round_trip([("EVALSHA", sha, 1, args[0], *args) for args in calls])
        missing = [i for i, r in enumerate(results) if isinstance(r, redis_errors.NoScriptError)]
        if missing:
            # Redis restarted and lost its script cache: NOSCRIPT means the call did not run.
            text = self.script.text
            retried = await self._round_trip(
                [("EVAL", text, 1, calls[i][0], *calls[i]) for i in missing]
            )
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        for i, result in enumerate(results):
            # e.g. LOADING while Redis replays its AOF, or OOM while its memory is full
            if isinstance(result, BaseException) and is_unavailable(result):
                results[i] = StoreUnavailable(str(result))
        return results

    async def _round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """One reply or error per command; with replicas_to_ack, an error for each command whose
        node did not get the writes confirmed by that many replicas in time."""
        client = self.store.redis
        if isinstance(client, RedisCluster):
            return await self._cluster_round_trip(client, commands)
        return await self._one_connection(client, commands)

    async def _one_connection(
        self, client: aioredis.Redis, commands: list[tuple[Any, ...]]
    ) -> list[Any]:
        """Send `commands` together on one pooled connection (and WAIT behind them).

        redis-py's Pipeline object costs about 30 µs more CPU per flush than this (measured), and
        every ~20 requests make a flush. Any failure part-way leaves the connection in an unknown
        state, so it is dropped rather than returned to the pool.
        """
        store = self.store
        sent = [*commands, store.wait] if store.replicas_to_ack else commands
        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(connection.pack_commands(sent))
            replies: list[Any] = []
            for _ in sent:
                try:
                    replies.append(await connection.read_response())
                except redis_errors.ResponseError as error:
                    replies.append(error)
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        if store.replicas_to_ack:
            replies = _unless_acknowledged(store, replies[:-1], replies[-1])
        return replies

    async def _cluster_round_trip(
        self, client: RedisCluster, commands: list[tuple[Any, ...]]
    ) -> list[Any]:
        """The commands grouped by the node serving each one's slot, a pipeline per node (one
        connection, a WAIT behind its commands), the nodes concurrently. A node that is down, or
        a slot no node serves, fails its own commands only: other tenants' go on."""
        results: list[Any] = [None] * len(commands)
        by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
        failed = False
        for index, command in enumerate(commands):
            try:
                node = client.get_node_from_key(command[3])
            except UNAVAILABLE_ERRORS as error:
                results[index] = error
                failed = True
                continue
            if node is None:  # the slot map is being rebuilt, or missed the slot's new node
                results[index] = StoreUnavailable("no node serves the tenant's slot yet")
                failed = True
            else:
                by_node.setdefault(node.name, (node, []))[1].append(index)
        groups = list(by_node.values())
        replies = await asyncio.gather(
            *(
                self._node_round_trip(client, node, [commands[i] for i in indices])
                for node, indices in groups
            ),
            return_exceptions=True,
        )
        for (_, indices), reply in zip(groups, replies, strict=True):
            failed = failed or isinstance(reply, BaseException)
            for place, index in enumerate(indices):
                results[index] = reply if isinstance(reply, BaseException) else reply[place]
        if failed:
            await self.store.reread_slots()
        return results

    async def _node_round_trip(
        self, client: RedisCluster, node: ClusterNode, commands: list[tuple[Any, ...]]
    ) -> list[Any]:
        store = self.store
        async with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            if store.replicas_to_ack:
                pipe.execute_command(*store.wait, target_nodes=node)
            replies = list(await pipe.execute(raise_on_error=False))
        if store.replicas_to_ack:
            replies = _unless_acknowledged(store, replies[:-1], replies[-1])
        return replies

    async def drain(self) -> None:
        """Wait for every queued and in-flight call (clean shutdown)."""
        while self._pending or self._tasks:
            if self._pending and not self._scheduled and self._in_flight < self.max_in_flight:
                self._flush()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await asyncio.sleep(0)


def _unless_acknowledged(store: Store, replies: list[Any], acked: Any) -> list[Any]:
    """`replies`, or an error for each write among them when the WAIT behind them fell short."""
    try:
        store.check_acknowledged(acked)
    except StoreUnavailable as error:
        return [reply if isinstance(reply, BaseException) else error for reply in replies]
    return replies
