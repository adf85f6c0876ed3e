"""Erasure of contacts (docs/privacy.md): the synchronous part, run by `DELETE
/v1/contacts/{identifier}`, and the background worker that erases the contact from the streams
and from the keys nothing of it names any more.

The background work (events, triggers, dead letters, webhook and destination jobs, walks over
the tenant's cart states and product watches) runs in chunks of at most CHUNK entries (or keys
looked at) per erase.lua call, so no call holds Redis long. An erasure is leased to one process
at a time (claim in erase.lua, renewed by every chunk); a process killed mid-way leaves it to
come due again when the lease ends, here or in another process, and the next chunk starts where
the last finished one ended (its cursor is in Redis, moved in the chunk's own script call).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from redis import exceptions as redis_errors

from gateway.background.loop import MAX_BACKOFF, pause
from gateway.background.webhooks import Hook
from gateway.clock import now_ms
from gateway.redis.arguments import EraseChunk, EraseClaim, EraseStart
from gateway.redis.keys import TenantKeys
from gateway.redis.store import StoreUnavailable
from gateway.settings import Tenant
from gateway.state import GatewayState

log = logging.getLogger("gateway.privacy")

CHUNK = 500  # stream entries (or list entries, hash fields, keys SCAN looks at) per call
LEASE_MS = 5_000  # a claim not renewed for this long comes due again
# s between looks for a queued erasure: the process that queued one starts at once
# (GatewayState.erasure_queued); a killed one's is taken over within LEASE_MS and this.
POLL_SECONDS = 1.0


async def start_erasure(
    gateway: GatewayState, tenant: Tenant, contact_id: str, suppress: bool
) -> str | None:
    """Erase the contact's keys and queue its stream work: the erasure's id, or None when the
    contact is gone already (erased by a concurrent call)."""
    keys = gateway.tenant_keys(tenant)
    erasure = secrets.token_hex(8)
    hooks = ",".join(Hook(tenant.id, keys, webhook).id for webhook in tenant.webhooks)
    destinations = ",".join(destination.id for destination in tenant.destinations)
    call = EraseStart(keys.prefix, erasure, contact_id, int(suppress), hooks, destinations)
    (status,) = await gateway.store.run("erase", call, now_ms())
    if status == b"missing":
        return None
    gateway.erasure_queued.set()
    return erasure


class Eraser:
    def __init__(self, gateway: GatewayState) -> None:
        self.gateway = gateway
        self.owner = secrets.token_hex(8)  # this process, in the claims it holds
        self.tenants = [(t.id, TenantKeys.for_tenant(t.id)) for t in gateway.settings.tenants]
        self.rewrite_due = False  # an erasure ended since the last accepted BGREWRITEAOF

    async def run(self, stop: asyncio.Event) -> None:
        backoff = POLL_SECONDS
        while not stop.is_set():
            failed = False
            for tenant, keys in self.tenants:
                try:
                    await self.erase_queued(stop, tenant, keys)
                except StoreUnavailable as exc:
                    failed = True
                    log.warning("eraser: redis unavailable", extra={"error": str(exc)})
                except Exception:
                    failed = True
                    log.exception("eraser pass failed", extra={"tenant": tenant})
            if self.rewrite_due:
                await self.rewrite_aof()
            await pause(stop, backoff if failed else POLL_SECONDS, self.gateway.erasure_queued)
            backoff = min(MAX_BACKOFF, backoff * 2) if failed else POLL_SECONDS

    async def erase_queued(self, stop: asyncio.Event, tenant: str, keys: TenantKeys) -> None:
        """Claim the tenant's queued erasures one by one and work each to its end."""
        store = self.gateway.store
        while not stop.is_set():
            erasure = await store.run(
                "erase", EraseClaim(keys.prefix, self.owner, LEASE_MS), now_ms()
            )
            if erasure is None:
                return
            erasure_id = erasure.decode()
            step = EraseChunk(keys.prefix, erasure_id, self.owner, LEASE_MS, CHUNK)
            state = b"more"
            while state == b"more" and not stop.is_set():
                (state,) = await store.run("erase", step, now_ms())
            if state == b"done":
                self.gateway.metrics.erasures_done.inc(tenant)
                log.info("erasure done", extra={"tenant": tenant, "erasure": erasure_id})
                self.rewrite_due = self.gateway.embedded_redis

    async def rewrite_aof(self) -> None:
        """With the embedded Redis, rewrite its append-only file once erasures have ended, so the
        erased values leave the disk too (with an external Redis that is the operator's
        BGREWRITEAOF: docs/privacy.md). A rewrite already running may predate them: refused,
        it is asked for again on the next pass."""
        try:
            await self.gateway.store.redis.bgrewriteaof()
        except redis_errors.ResponseError as exc:
            log.info("eraser: BGREWRITEAOF deferred", extra={"error": str(exc)})
            return
        except StoreUnavailable:
            return
        self.rewrite_due = False
        log.info("eraser: append-only file rewrite started")
