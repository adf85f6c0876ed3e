"""The product fan-out: tells the watchers of a product whose price fell or that is back in
stock (docs/triggers.md, Price drops and back in stock), in every gateway process.

`POST /v1/products` only queues a product (products.lua); each pass here runs `fanout.lua` per
tenant, which claims a queued product for this process (a lease, so that processes share the
products out and a killed one's product is taken over once its lease ends) and looks at the next
chunk of its watchers from a cursor kept in Redis. A chunk's decisions, triggers and marks are one
atomic step, and a watcher told of a type for its watch is never told of it again: several
processes, a restart or a kill mid-way emit each watcher's trigger once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from gateway.background.loop import every_tenant
from gateway.clock import now_ms
from gateway.redis.arguments import FanoutStep
from gateway.redis.results import FanoutResult
from gateway.settings import Tenant
from gateway.state import GatewayState

log = logging.getLogger("gateway.fanout")

# Watchers per script call: bounds how long one call holds Redis, and so what a request waiting
# behind it may wait. A watcher told costs Redis ~0.1-0.4 ms (its contact's identifiers, the
# trigger, the cooldown), one not told far less. Measured with 20,000 watchers on a loaded 2-core
# machine: 250 a call told them all in 8.9 s but took POST /v1/products p99 from 45 to 83 ms;
# 100 took 12 s and kept it at 61 ms (idle 50), ingest unslowed.
CHUNK = 100
LEASE_MS = 10_000  # a product held this long past its last step goes to another process
# s between looks for a queued product when there was none: the process whose request queued one
# starts at once (GatewayState.fanout_queued); the others help within this. Each look is a script
# call per tenant, so a short interval costs an idle Redis calls per second per tenant and process.
INTERVAL = 1.0


class FanOut:
    def __init__(self, gateway: GatewayState) -> None:
        self.gateway = gateway
        self.token = secrets.token_hex(8)  # this process, as the holder of a lease
        self.held: dict[str, str] = {}  # tenant -> the product whose fan-out it holds

    async def run(self, stop: asyncio.Event) -> None:
        tenants = self.gateway.settings.tenants
        queued = self.gateway.fanout_queued
        await every_tenant(stop, tenants, self.step, INTERVAL, log, "fan-out", queued)

    async def step(self, tenant: Tenant) -> bool:
        """One chunk of a fan-out of the tenant; False when none was due."""
        policy = tenant.triggers
        call = FanoutStep(
            prefix=self.gateway.tenant_keys(tenant).prefix,
            token=self.token,
            product_id=self.held.get(tenant.id, ""),
            lease_ms=LEASE_MS,
            chunk=CHUNK,
            watch_ms=policy.watch_days * 86_400_000,
            drop_percent=policy.price_drop_min_percent,
            cooldown_ms=int(policy.cooldown_seconds * 1000),
            contact_ttl=self.gateway.settings.contact_ttl_seconds,
        )
        result = FanoutResult.read(await self.gateway.store.run("fanout", call, now_ms()))
        if not result.product_id or result.done:
            self.held.pop(tenant.id, None)
        else:
            self.held[tenant.id] = result.product_id
        return bool(result.product_id)
