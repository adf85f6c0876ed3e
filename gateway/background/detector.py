"""The visit detector: closes idle visits and emits their triggers, in every gateway process.

Each pass runs `detect.lua` once per tenant. The script claims, decides and appends the trigger
(or holds it for the tenant's delay, then re-checks and emits it once due) in one atomic step, so
any number of processes can run it side by side with no coordination: a visit leaves the
deadline set (a delayed trigger its due-time set) in the same step that writes its trigger, and a
process killed while waiting for the answer has either done the whole step (Redis finishes a
script it started) or none of it (the next pass, here or elsewhere, does it).
"""

from __future__ import annotations

import asyncio
import logging

from gateway.background.loop import every_tenant
from gateway.clock import now_ms
from gateway.redis.results import DetectResult
from gateway.settings import Tenant
from gateway.state import GatewayState

log = logging.getLogger("gateway.detector")

BATCH = 500  # visits closed (and delayed triggers released) per script call: bounds how long
# one call holds Redis


def poll_interval(timeouts: list[float]) -> float:
    """A fifth of the shortest visit timeout, within [50 ms, 1 s]: triggers stay prompt."""
    return min(1.0, max(0.05, min(timeouts) / 5))


class Detector:
    def __init__(self, gateway: GatewayState) -> None:
        self.gateway = gateway
        self.tenants = gateway.settings.tenants
        self.interval = poll_interval([t.visit_timeout_seconds for t in gateway.settings.tenants])

    async def run(self, stop: asyncio.Event) -> None:
        await every_tenant(stop, self.tenants, self.detect, self.interval, log, "detector")

    async def detect(self, tenant: Tenant) -> bool:
        """One pass for a tenant; True when it hit the batch size (more may be due)."""
        limits = self.gateway.limits(tenant)
        reply = await self.gateway.store.run("detect", limits, now_ms(), [BATCH])
        result = DetectResult.read(reply)
        metrics, name = self.gateway.metrics, tenant.id
        metrics.detector_lag.set(name, value=result.lag_ms / 1000)
        # Only what the tally holds: a series of 0 would appear in /metrics with no event behind it.
        if result.closed:
            metrics.visits_closed.inc(name, amount=result.closed)
        if result.anonymous:
            metrics.visits_anonymous.inc(name, amount=result.anonymous)
        for trigger_type, amount in result.triggers.items():
            metrics.triggers_emitted.inc(name, trigger_type, amount=amount)
        for (trigger_type, reason), amount in result.suppressed.items():
            metrics.triggers_suppressed.inc(name, trigger_type, reason, amount=amount)
        for trigger_type, amount in result.converted.items():
            metrics.trigger_conversions.inc(name, trigger_type, amount=amount)
        for (trigger_type, currency), revenue in result.revenue.items():
            metrics.trigger_revenue.inc(name, trigger_type, currency, amount=revenue)
        return result.handled >= BATCH
