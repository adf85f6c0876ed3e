"""Storing events without HTTP, for the rows that need many contacts fast (detector, delayed
triggers, product fan-out, forwarder) and for script_cost.py: the gateway's own validation
(`events.prepare`) and its ingest script called directly, in 500-event calls as the batcher
merges requests. HTTP ingest is measured by the wrk rows; here the events should land as close
together as possible (over ~2 s rather than the ~6-10 s HTTP takes on this machine).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from gateway.clock import iso, now_ms
from gateway.model import events
from gateway.redis.batcher import ingest_items
from gateway.redis.scripts import Script
from gateway.settings import Tenant, load_settings
from gateway.state import GatewayState

CALL = 500  # events per ingest call


def visitor_views(count: int) -> Iterator[dict[str, Any]]:
    """One productViewed for each of `count` contacts with an email: each visit is due a trigger."""
    product = json.dumps({"productId": "WS01-L-Green", "price": 45.5})
    for n in range(count):
        yield {
            "eventTypeKey": "productViewed",
            "keyValue": f"visitor{n}@example.com",
            "params": [{"name": "product", "value": product}],
        }


@dataclass(frozen=True)
class DirectIngest:
    """One tenant of a config, its ingest script loaded into `client`."""

    client: redis.Redis
    gateway: GatewayState
    tenant: Tenant
    script: Script

    @classmethod
    def open(cls, client: redis.Redis, config: Path, work: Path, tenant_id: str) -> DirectIngest:
        settings = load_settings(
            str(config),
            env={"REDIS_URL": "redis://unused", "GATEWAY_DATA_DIR": str(work / "gateway-data")},
        )
        (tenant,) = [t for t in settings.tenants if t.id == tenant_id]
        script = Script.load("ingest")
        client.script_load(script.text)
        return cls(client, GatewayState(settings), tenant, script)

    def store(
        self, bodies: Iterable[dict[str, Any]], site_key: bool = True, forward: bool = False
    ) -> tuple[int, int]:
        """Validate every event first, then store them: the times (ms) of the first and the
        last call."""
        received = iso(now_ms())
        prepared = [events.prepare(body, site_key, received, forward) for body in bodies]
        limits = self.gateway.limits(self.tenant)
        first = last = now_ms()
        for start in range(0, len(prepared), CALL):
            last = now_ms()
            chunk = [(p.envelope, p.raw, p.forward) for p in prepared[start : start + CALL]]
            self.client.evalsha(self.script.sha, 0, *limits.args(last, ingest_items(chunk)))
        return first, last
