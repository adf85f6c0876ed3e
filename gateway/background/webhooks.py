"""Signed webhook delivery of the trigger stream (delivery.py schedules, claims and retries).

Each configured webhook is a channel reading the tenant's trigger stream through its own consumer
group. Delivery is at least once: receivers dedupe on the trigger id (`X-Gateway-Id`, or
`webhook-id` with `signature = "standard"`). Failures are retried with exponential backoff and
jitter until the trigger is `retry_budget_seconds` old; then it goes to the dead-letter list.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import httpx
import orjson

from gateway.background.delivery import Channel, Deliverer, Outcome, Unit
from gateway.clock import iso
from gateway.redaction import redacted
from gateway.redis.keys import TenantKeys
from gateway.redis.results import ClaimedJob
from gateway.settings import Webhook
from gateway.signing import signed_headers
from gateway.state import GatewayState

log = logging.getLogger("gateway.webhooks")


class Hook(Channel):
    source = "triggers"

    def __init__(self, tenant: str, keys: TenantKeys, webhook: Webhook) -> None:
        self.tenant, self.keys, self.webhook = tenant, keys, webhook
        self.types = ",".join(sorted(webhook.types or ()))
        self.timeout_seconds = webhook.timeout_seconds
        self.retry_initial_seconds = webhook.retry_initial_seconds
        self.retry_budget_seconds = webhook.retry_budget_seconds

    @property
    def id(self) -> str:
        """Stable across restarts and config reordering: derived from what the hook is."""
        return hashlib.sha256(f"{self.webhook.url}|{self.types}".encode()).hexdigest()[:16]

    async def prepare(self, gateway: GatewayState) -> None:
        """New groups start at the trigger stream's end."""
        await gateway.store.create_trigger_group(self.keys, self.id, self.group)

    async def send(self, client: httpx.AsyncClient, unit: Unit) -> Outcome:
        """One POST; delivered when answered 2xx."""
        (job,) = unit
        webhook, body = self.webhook, job.body
        # A list, not a dict: the gateway scheme repeats its signature header once per secret.
        headers = [
            ("content-type", "application/json"),
            ("user-agent", "gateway-webhooks/1"),
            *signed_headers(
                webhook.signature,
                webhook.secrets,
                # the same on every retry: consumers dedupe on it
                trigger_field(body, "id", job.stream_id),
                str(int(time.time())),
                body,
            ),
        ]
        try:
            async with asyncio.timeout(webhook.timeout_seconds):
                response = await client.post(webhook.url, content=body, headers=headers)
        except TimeoutError:
            return Outcome(f"timed out after {webhook.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            # It becomes the dead letter's lastError: no credentials of the URL, should the
            # message quote it.
            error = f"{type(exc).__name__}: {exc}".replace(webhook.url, redacted(webhook.url))
            return Outcome(error)
        if 200 <= response.status_code < 300:
            return Outcome()
        return Outcome(f"HTTP {response.status_code}")

    def delivered(self, job: ClaimedJob) -> str:
        """Counted in the day's figures of its trigger's type (docs/triggers.md)."""
        return f"{job.stream_id}:{trigger_field(job.body, 'type', 'unknown')}"

    def dead_counted(self, job: ClaimedJob) -> tuple[str, int]:
        return trigger_field(job.body, "type", "unknown"), int(job.stream_id.partition("-")[0])

    def dead_entry(self, job: ClaimedJob, outcome: Outcome, now: int) -> bytes:
        log.warning("webhook dead-lettered", extra={"url": redacted(self.webhook.url)})
        return orjson.dumps(
            {
                # Dead letters are read over the API: the URL without its credentials or token.
                "webhook": redacted(self.webhook.url),
                "triggerId": trigger_field(job.body, "id", job.stream_id),
                "streamId": job.stream_id,
                "attempts": job.attempt,
                "lastError": outcome.error,
                "deadAt": iso(now),
                "trigger": orjson.Fragment(job.body),
            }
        )

    def count(self, gateway: GatewayState, what: str, jobs: int) -> None:
        metrics = gateway.metrics
        counter = {
            "done": metrics.webhook_deliveries,
            "failed": metrics.webhook_failures,
            "dead": metrics.webhook_dead,
        }[what]
        counter.inc(self.tenant, amount=jobs)


def webhook_deliverer(gateway: GatewayState) -> Deliverer:
    hooks = [
        Hook(t.id, TenantKeys.for_tenant(t.id), w)
        for t in gateway.settings.tenants
        for w in t.webhooks
    ]
    return Deliverer(gateway, hooks, "webhooks")


def trigger_field(body: bytes, name: str, fallback: str) -> str:
    """The trigger's `id` or `type` (a string), `fallback` for a body without it."""
    try:
        found = orjson.loads(body).get(name)
    except (orjson.JSONDecodeError, AttributeError):
        return fallback
    return found if isinstance(found, str) else fallback
