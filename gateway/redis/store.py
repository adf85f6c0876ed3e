"""The Redis side: one client and the Lua scripts run through it (scripts.py; the ingest
micro-batcher is batcher.py).

Scripts are sent by SHA (EVALSHA); after a Redis restart has emptied the script cache the first
NOSCRIPT answer is retried once with the full text, which caches it again. Connection trouble of
any kind becomes `StoreUnavailable`, which the API answers with 503 + Retry-After: a request is
never told its data is stored unless Redis said so.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from gateway.redis.arguments import ScriptArgs
from gateway.redis.connection import Client
from gateway.redis.constants import WHOLE_CALL_ERRORS
from gateway.redis.keys import TenantKeys
from gateway.redis.reads import Reads
from gateway.redis.scripts import Script

# Errors that mean "Redis is not there right now", as opposed to a bug in a command.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    # A cluster in a failover or a resharding: the slot's node is down or not chosen yet.
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    OSError,
)


# Errors with which Redis refuses a call it would take later (constants.WHOLE_CALL_ERRORS, matched
# as codes the same way): memory full (maxmemory with noeviction; inside a script only its first
# write can be refused, so nothing is half-written), a failing disk (MISCONF), a replica or a
# loading server, a slot moving or not served. Like an outage, they are a 503 to retry, not a bug.
REFUSED_CALL = re.compile(
    "(?:^|-)(?:" + "|".join(re.escape(code) for code in WHOLE_CALL_ERRORS) + ")"
)


class StoreUnavailable(Exception):
    pass


# redis-py turns a plain OOM reply into OutOfMemoryError, taking "OOM" out of its message; an
# error inside a script keeps the words (REFUSED_CALL).
_REFUSED_CLASSES = (*UNAVAILABLE_ERRORS, redis_errors.OutOfMemoryError)


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, _REFUSED_CLASSES):
        return True
    return isinstance(error, redis_errors.ResponseError) and bool(REFUSED_CALL.search(str(error)))


class NotReplicated(StoreUnavailable):
    """The write was made, but fewer replicas than replicas_to_ack confirmed it in time: not
    acknowledged, so the client retries (with its eventId, which makes the retry a duplicate)."""


class Store(Reads):
    def __init__(self, client: Client, replicas_to_ack: int = 0, ack_timeout_ms: int = 200) -> None:
        self.redis = client
        # Multi-key reads of one contact or order run in MULTI, but redis-py's async cluster
        # client does not take transactions in every version admitted (6.0 refuses them): there
        # the keys, all in the tenant's slot, are read in one pipeline on one connection.
        self.transactions = not isinstance(client, RedisCluster)
        self.replicas_to_ack = replicas_to_ack
        self.ack_timeout_ms = ack_timeout_ms
        # Sent behind the writes on the connection that made them (on a cluster, the connection
        # to the node serving the key): WAIT counts only what its own connection wrote.
        self.wait = ("WAIT", replicas_to_ack, ack_timeout_ms)
        self.scripts: dict[str, Script] = {}
        self._slots_read_at = 0.0

    def check_acknowledged(self, acked: Any) -> None:
        if isinstance(acked, BaseException):
            raise StoreUnavailable(str(acked)) from acked
        if int(acked) < self.replicas_to_ack:
            raise NotReplicated(
                f"{acked} of {self.replicas_to_ack} replicas confirmed the write within "
                f"{self.ack_timeout_ms} ms"
            )

    def script(self, name: str) -> Script:
        if name not in self.scripts:
            self.scripts[name] = Script.load(name)
        return self.scripts[name]

    async def run(self, name: str, call: ScriptArgs, now: int, items: Sequence[Any] = ()) -> Any:
        """One call of script `name` at `now` (ms), outside the batcher (rare paths: rate limits,
        orders, detector, webhooks): Redis' answer, which results.py reads."""
        script = self.script(name)
        args = call.args(now, items)
        # KEYS[1] is the tenant prefix (never written): it names the tenant's slot, which a
        # cluster client routes the call by; the scripts read only ARGV.
        key = call.prefix
        try:
            try:
                return await self._call("EVALSHA", script.sha, key, args)
            except redis_errors.NoScriptError:
                return await self._call("EVAL", script.text, key, args)
        except (redis_errors.RedisError, redis_errors.RedisClusterException, OSError) as exc:
            if is_unavailable(exc):
                await self.reread_slots()
                raise StoreUnavailable(str(exc)) from exc
            raise

    async def _call(self, command: str, script: str, key: str, args: Sequence[Any]) -> Any:
        if not self.replicas_to_ack:
            return await self.redis.execute_command(command, script, 1, key, *args)
        client = self.redis
        target = (
            {"target_nodes": client.get_node_from_key(key)}
            if isinstance(client, RedisCluster)
            else {}
        )
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command(command, script, 1, key, *args)
            pipe.execute_command(*self.wait, **target)
            result, acked = await pipe.execute(raise_on_error=False)
        if isinstance(result, BaseException):
            raise result
        self.check_acknowledged(acked)
        return result

    async def create_trigger_group(self, keys: TenantKeys, hook: str, group: str) -> None:
        """A webhook's consumer group of the tenant's trigger stream, reading what follows its
        newest entry (the stream is made if need be); a group that exists already is left as it
        is. A new group's start is kept as the webhook's "since": the triggers up to it were
        never sent to it (GET /v1/triggers, deliveries)."""
        try:
            newest = await self.triggers_before(keys, "+", 1)
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        start = newest[0][0].decode() if newest else "0-0"
        if await self.create_group(keys.triggers, group, start):
            try:
                await self.redis.set(keys.webhook(hook, "since"), start, nx=True)
            except UNAVAILABLE_ERRORS as exc:
                raise StoreUnavailable(str(exc)) from exc

    async def create_queue_group(self, keys: TenantKeys, destination: str, group: str) -> None:
        """The consumer group of a destination's queue, reading from its start: what ingest
        queued before the group existed is forwarded too."""
        await self.create_group(keys.destination(destination, "q"), group, "0")

    async def create_group(self, stream: str, group: str, start: str) -> bool:
        """Whether the group is new (False: it existed already, and is left as it is)."""
        try:
            await self.redis.xgroup_create(stream, group, id=start, mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        return True

    async def lift_suppressions(self, keys: TenantKeys, digests: Sequence[str]) -> list[bool]:
        """Remove each digest from the tenant's suppressed identifiers: whether it was there."""
        if not digests:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for digest in digests:
                    pipe.srem(keys.suppressed, digest)
                return [bool(removed) for removed in await pipe.execute()]
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except UNAVAILABLE_ERRORS:
            return False

    async def serves(self, tenants: Sequence[TenantKeys]) -> bool:
        """Whether Redis answers for every tenant: on a cluster, a keyed read per tenant, which
        reaches the node serving its slot (and follows a failover's new map)."""
        if not isinstance(self.redis, RedisCluster):
            return await self.ping()
        try:
            for keys in tenants:
                await self.redis.exists(keys.prefix)
        except UNAVAILABLE_ERRORS:
            await self.reread_slots()
            return False
        return True

    async def reread_slots(self, at_most_every: float = 1.0) -> None:
        """Read the cluster's slot map again after a call failed for want of its node. redis-py
        re-reads it itself only in some cases and versions (not after a failed pipeline in all
        of them, nor ever for a slot it found unserved, which stays missing from its map):
        without this, a tenant whose slot moved or came back could stay 503 until a restart.
        Every call may come here; the map is read at most once a second."""
        client = self.redis
        now = time.monotonic()
        if not isinstance(client, RedisCluster) or now - self._slots_read_at < at_most_every:
            return
        self._slots_read_at = now
        with contextlib.suppress(*UNAVAILABLE_ERRORS, redis_errors.RedisClusterException):
            await client.nodes_manager.initialize()

    async def close(self) -> None:
        await self.redis.aclose()
