"""Signed webhook delivery of the trigger stream, with retries scheduled in Redis.

Each configured webhook reads the tenant's trigger stream through its own consumer group;
`webhook.lua` moves what it reads into the webhook's schedule (a sorted set of due times) in
the same step as the XACK, so nothing read is lost. Due jobs are claimed with a lease: a process
that dies mid-POST leaves the job to come due again, so delivery is at least once and receivers
dedupe on the trigger id (`X-Gateway-Id`, or `webhook-id` with `signature = "standard"`).
Failures are retried with exponential backoff and jitter until the trigger is
`retry_budget_seconds` old (the last delay is clipped to end there); a failed attempt made at or
after that age goes to the dead-letter list. All of it runs in a background task with its own
HTTP client: a slow endpoint never slows ingest.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass

import httpx
import orjson

from gateway.background.loop import MAX_BACKOFF, pause
from gateway.clock import iso, now_ms
from gateway.redaction import redacted
from gateway.redis.arguments import (
    WebhookClaim,
    WebhookDead,
    WebhookDone,
    WebhookEnqueue,
    WebhookRetry,
)
from gateway.redis.keys import TenantKeys
from gateway.redis.results import ClaimedJob
from gateway.redis.store import StoreUnavailable
from gateway.settings import Webhook
from gateway.signing import signed_headers
from gateway.state import GatewayState

log = logging.getLogger("gateway.webhooks")

POLL_SECONDS = 0.1
READ_BATCH = 100
MAX_IN_FLIGHT = 32  # concurrent POSTs per process, over all webhooks
MAX_RETRY_DELAY = 600.0  # backoff cap, seconds
LEASE_MARGIN_MS = 1000  # a claimed job comes due again this long after twice its timeout
STOP_GRACE = 2.0  # seconds in-flight POSTs get at shutdown


def retry_delay(initial: float, attempt: int) -> float:
    """Exponential backoff with jitter: spreads retries of many triggers over time."""
    return float(min(MAX_RETRY_DELAY, initial * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class Hook:
    tenant: str
    keys: TenantKeys
    webhook: Webhook

    @property
    def id(self) -> str:
        """Stable across restarts and config reordering: derived from what the hook is."""
        types = ",".join(sorted(self.webhook.types or ()))
        return hashlib.sha256(f"{self.webhook.url}|{types}".encode()).hexdigest()[:16]

    @property
    def group(self) -> str:
        return f"webhook:{self.id}"


class Deliverer:
    def __init__(self, gateway: GatewayState) -> None:
        self.gateway = gateway
        self.hooks = [
            Hook(t.id, TenantKeys.for_tenant(t.id), w)
            for t in gateway.settings.tenants
            for w in t.webhooks
        ]
        self.ready: set[str] = set()  # hooks whose consumer group exists
        self.sending: set[asyncio.Task[None]] = set()

    async def prepare(self) -> None:
        """Create each webhook's consumer group; new groups start at the stream's end."""
        for hook in self.hooks:
            await self.prepare_hook(hook)

    async def prepare_hook(self, hook: Hook) -> None:
        await self.gateway.store.create_trigger_group(hook.keys, hook.group)
        self.ready.add(hook.id)

    async def run(self, stop: asyncio.Event) -> None:
        if not self.hooks:
            return
        backoff = POLL_SECONDS
        async with httpx.AsyncClient(follow_redirects=False) as client:
            try:
                while not stop.is_set():
                    failed = False
                    # Each hook on its own: on a cluster, a tenant whose slot is down must not
                    # hold back the deliveries of the hooks after it.
                    for hook in self.hooks:
                        try:
                            if hook.id not in self.ready:
                                await self.prepare_hook(hook)
                            await self.poll(client, hook)
                        except Exception as exc:
                            failed = True
                            if "NOGROUP" in str(exc):
                                self.ready.discard(hook.id)  # Redis lost its data: made again
                            log.warning(
                                "webhooks: pass failed",
                                extra={"webhook": hook.id, "error": str(exc)},
                            )
                    await pause(stop, backoff if failed else POLL_SECONDS)
                    backoff = min(MAX_BACKOFF, backoff * 2) if failed else POLL_SECONDS
            finally:
                # POSTs under way get a moment to finish and be recorded; the rest are left to
                # their lease, which brings them back (here or in another process).
                if self.sending:
                    await asyncio.wait(self.sending, timeout=STOP_GRACE)
                for task in self.sending:
                    task.cancel()
                await asyncio.gather(*self.sending, return_exceptions=True)

    async def poll(self, client: httpx.AsyncClient, hook: Hook) -> None:
        store, prefix = self.gateway.store, hook.keys.prefix
        types = ",".join(sorted(hook.webhook.types or ()))
        enqueue = WebhookEnqueue(prefix, hook.id, hook.group, types, READ_BATCH)
        await store.run("webhook", enqueue, now_ms())
        free = MAX_IN_FLIGHT - len(self.sending)
        if free <= 0:
            return
        lease = int(hook.webhook.timeout_seconds * 2000) + LEASE_MARGIN_MS
        claimed = await store.run("webhook", WebhookClaim(prefix, hook.id, lease, free), now_ms())
        for job in ClaimedJob.read_all(claimed):
            task = asyncio.create_task(
                self.attempt(client, hook, job.stream_id, job.body, job.attempt)
            )
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def attempt(
        self, client: httpx.AsyncClient, hook: Hook, stream_id: str, body: bytes, attempt: int
    ) -> None:
        store, prefix, metrics = self.gateway.store, hook.keys.prefix, self.gateway.metrics
        started = now_ms()  # an attempt begun before the budget's end is never the last one
        error = await self.post(client, hook.webhook, stream_id, body)
        born = int(stream_id.partition("-")[0])  # stream ids start with the append time
        kind = trigger_field(body, "type", "unknown")
        try:
            if error is None:
                metrics.webhook_deliveries.inc(hook.tenant)
                done = WebhookDone(prefix, hook.id, stream_id, kind, born)
                await store.run("webhook", done, now_ms())
                return
            metrics.webhook_failures.inc(hook.tenant)
            now = now_ms()
            spent = born + math.ceil(hook.webhook.retry_budget_seconds * 1000)
            if started < spent:
                # Retried until the budget is spent (docs/triggers.md, Webhooks): a delay that
                # would overshoot it is clipped, so the last attempt is made at its end rather
                # than up to a whole (10-minute) delay before it.
                delay_ms = int(retry_delay(hook.webhook.retry_initial_seconds, attempt) * 1000)
                due = min(now + delay_ms, spent)
                await store.run("webhook", WebhookRetry(prefix, hook.id, stream_id, due), now)
                return
            entry = dead_letter(hook.webhook, stream_id, body, attempt, error, now)
            dead = WebhookDead(prefix, hook.id, stream_id, entry, kind, born)
            if await store.run("webhook", dead, now):
                metrics.webhook_dead.inc(hook.tenant)
                log.warning("webhook dead-lettered", extra={"url": redacted(hook.webhook.url)})
        except StoreUnavailable as exc:
            # The lease brings the job back once Redis answers again.
            log.warning("webhooks: could not record an attempt", extra={"error": str(exc)})

    async def post(
        self, client: httpx.AsyncClient, webhook: Webhook, stream_id: str, body: bytes
    ) -> str | None:
        """One POST; None when answered 2xx, else why it failed."""
        # A list, not a dict: the gateway scheme repeats its signature header once per secret.
        headers = [
            ("content-type", "application/json"),
            ("user-agent", "gateway-webhooks/1"),
            *signed_headers(
                webhook.signature,
                webhook.secrets,
                trigger_field(
                    body, "id", stream_id
                ),  # the same on every retry: consumers dedupe on it
                str(int(time.time())),
                body,
            ),
        ]
        try:
            async with asyncio.timeout(webhook.timeout_seconds):
                response = await client.post(webhook.url, content=body, headers=headers)
        except TimeoutError:
            return f"timed out after {webhook.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            # It becomes the dead letter's lastError: no credentials of the URL, should the
            # message quote it.
            return f"{type(exc).__name__}: {exc}".replace(webhook.url, redacted(webhook.url))
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"


def trigger_field(body: bytes, name: str, fallback: str) -> str:
    """The trigger's `id` or `type` (a string), `fallback` for a body without it."""
    try:
        found = orjson.loads(body).get(name)
    except (orjson.JSONDecodeError, AttributeError):
        return fallback
    return found if isinstance(found, str) else fallback


def dead_letter(
    webhook: Webhook, stream_id: str, body: bytes, attempts: int, error: str, now: int
) -> bytes:
    return orjson.dumps(
        {
            # Dead letters are read over the API: the URL without its credentials or token.
            "webhook": redacted(webhook.url),
            "triggerId": trigger_field(body, "id", stream_id),
            "streamId": stream_id,
            "attempts": attempts,
            "lastError": error,
            "deadAt": iso(now),
            "trigger": orjson.Fragment(body),
        }
    )
