"""Where the triggers of a feed page stand with each webhook (`deliveries` of GET /v1/triggers),
and `GET /v1/webhooks`: each webhook's scheduled and dead deliveries (docs/api.md, Triggers and
their deliveries). Webhooks are named by their URL as the dead letters name them: without its
secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.background.webhooks import Hook
from gateway.clock import iso
from gateway.http import StreamOrder, json_response, stream_order
from gateway.redaction import redacted
from gateway.redis.keys import TenantKeys
from gateway.redis.reads import HookSchedule, StreamEntry
from gateway.settings import Tenant
from gateway.state import GatewayState, server_principal


def tenant_hooks(tenant: Tenant, keys: TenantKeys) -> list[Hook]:
    """The tenant's webhooks as the delivery task runs them (their ids name their keys)."""
    return [Hook(tenant.id, keys, webhook) for webhook in tenant.webhooks]


@dataclass(frozen=True, slots=True)
class HookView:
    """One webhook as the page's states need it, worked out once per page."""

    name: str  # its URL, redacted
    types: frozenset[str] | None
    since: StreamOrder  # the triggers up to it were never sent to it
    read_to: StreamOrder | None  # None: no consumer group yet
    schedule: HookSchedule

    def state(self, n: int, at: StreamOrder) -> dict[str, Any]:
        """Trigger `n` of the page (stream id `at`): notSent (emitted before the webhook was
        configured), queued (not yet read by it, or read and not yet tried), retrying (tried,
        not yet delivered), dead (dead-lettered) or delivered (none of these: webhook.lua
        forgets a delivered one)."""
        if at <= self.since:
            return {"webhook": self.name, "state": "notSent"}
        if self.read_to is None or at > self.read_to:
            return {"webhook": self.name, "state": "queued"}
        due, dead = self.schedule.due[n], self.schedule.dead[n]
        if due is not None:
            attempts = int(self.schedule.tries[n] or 0)
            state = "retrying" if attempts else "queued"
            return {
                "webhook": self.name,
                "state": state,
                "attempts": attempts,
                "nextAttemptAt": iso(due),
            }
        if dead is not None:
            return {"webhook": self.name, "state": "dead", "deadAt": iso(dead)}
        return {"webhook": self.name, "state": "delivered"}


async def deliveries(
    gateway: GatewayState, tenant: Tenant, keys: TenantKeys, rows: list[StreamEntry]
) -> list[list[dict[str, Any]]]:
    """Per trigger of `rows`, its state with each webhook its type is routed to (one Redis round
    trip for the page)."""
    hooks = tenant_hooks(tenant, keys)
    if not hooks or not rows:
        return [[] for _ in rows]
    ids = [stream_id.decode() for stream_id, _ in rows]
    schedules = await gateway.store.webhook_schedules(keys, [(h.id, h.group) for h in hooks], ids)
    views = [
        HookView(
            redacted(hook.webhook.url),
            hook.webhook.types,
            (0, 0) if schedule.since is None else stream_order(schedule.since),
            None if schedule.read_to is None else stream_order(schedule.read_to),
            schedule,
        )
        for hook, schedule in zip(hooks, schedules, strict=True)
    ]
    found: list[list[dict[str, Any]]] = []
    for n, (stream_id, fields) in enumerate(rows):
        trigger_type = fields.get(b"type", b"").decode()
        at = stream_order(stream_id)
        found.append(
            [
                view.state(n, at)
                for view in views
                if view.types is None or trigger_type in view.types
            ]
        )
    return found


async def list_webhooks(request: Request) -> Response:
    """The tenant's webhooks: URL (redacted), types, deliveries scheduled (waiting for their
    first attempt or a retry) and dead (the newest 10000 kept)."""
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    hooks = tenant_hooks(principal.tenant, keys)
    counts = await gateway.store.webhook_counts(keys, [hook.id for hook in hooks])
    return json_response(
        {
            "webhooks": [
                {
                    "webhook": redacted(hook.webhook.url),
                    "types": sorted(hook.webhook.types) if hook.webhook.types else None,
                    "scheduled": counts[2 * n],
                    "dead": counts[2 * n + 1],
                }
                for n, hook in enumerate(hooks)
            ]
        }
    )


routes = [Route("/v1/webhooks", list_webhooks)]
