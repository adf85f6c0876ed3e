"""Forwarding of accepted events and stored orders to eSputnik/Yespo (docs/destinations.md).

Ingest queues each job in the step that stores it (lib_destinations.lua); each destination is a
delivery.py channel reading its own queue, so retries, leases and dead letters are the webhooks'.
Events go one per `POST {url}/v1/event`, in order per contact (a contact's claimed events form
one chain); orders go together in `POST {url}/v1/orders` batches. 429, 5xx, timeouts and
connection errors are retried (Retry-After honoured) until the job is `max_attempt_seconds` old;
any other answer is final: the job is dead-lettered with the first 2 KB of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import orjson

from gateway.background.delivery import Chain, Channel, Deliverer, Outcome, Unit, retry_after
from gateway.clock import iso, now_ms
from gateway.redaction import redacted
from gateway.redis.keys import TenantKeys
from gateway.redis.results import ClaimedJob
from gateway.settings import Destination
from gateway.state import GatewayState

log = logging.getLogger("gateway.destinations")

ANSWER_KEPT = 2048  # characters of a refusal's answer kept in its dead letter
RETRY_INITIAL_SECONDS = 1.0  # first retry delay, doubled per attempt (with jitter)
OBSERVE_SECONDS = 1.0  # how often the queue's length and age are read for /metrics
EVENT, ORDER = b"e", b"o"  # a queued job's kind (lib_destinations.lua)
CONTACT_PARAMS = ("email", "phone", "contactkey", "externalcustomerid")


class Forwarder(Channel):
    """One destination of a tenant."""

    source = "queue"
    retry_initial_seconds = RETRY_INITIAL_SECONDS

    def __init__(self, tenant: str, keys: TenantKeys, destination: Destination) -> None:
        self.tenant, self.keys, self.destination = tenant, keys, destination
        self.timeout_seconds = destination.timeout_seconds
        self.retry_budget_seconds = destination.max_attempt_seconds
        self.longest_chain = self.max_claim  # one contact's jobs may fill a whole claim
        self.auth = httpx.BasicAuth("gateway", destination.api_key)
        self.observed = 0.0

    @property
    def id(self) -> str:
        return self.destination.id

    @property
    def group(self) -> str:
        return "forwarder"

    async def prepare(self, gateway: GatewayState) -> None:
        await gateway.store.create_queue_group(self.keys, self.id, self.group)

    def plan(self, jobs: list[ClaimedJob]) -> list[Chain]:
        """Each contact's events one after the other, in queue order; the orders in one batch."""
        by_contact: dict[str, list[Unit]] = {}
        orders: list[ClaimedJob] = []
        for job in sorted(jobs, key=queue_order):
            if job.body[:1] == ORDER:
                orders.append(job)
            else:
                by_contact.setdefault(contact_of(job), []).append([job])
        chains: list[Chain] = list(by_contact.values())
        if orders:
            chains.append([orders])  # a claim never holds more than eSputnik's 1,000 a batch
        return chains

    async def send(self, client: httpx.AsyncClient, unit: Unit) -> Outcome:
        url = self.destination.url
        if unit[0].body[:1] == ORDER:
            url, body = url + "/v1/orders", orders_body(unit)
        else:
            url, body = url + "/v1/event", unit[0].body[1:]
        headers = {"content-type": "application/json", "user-agent": "gateway-destinations/1"}
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await client.post(url, content=body, headers=headers, auth=self.auth)
        except TimeoutError:
            return Outcome(f"timed out after {self.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(f"{type(exc).__name__}: {exc}".replace(url, redacted(url)))
        status = response.status_code
        if 200 <= status < 300:
            return Outcome()
        error = f"HTTP {status}"
        if status == 429 or status >= 500:
            return Outcome(error, retry_after(response.headers.get("retry-after")))
        return Outcome(error, final=True, answer=response.text[:ANSWER_KEPT])

    def dead_entry(self, job: ClaimedJob, outcome: Outcome, now: int) -> bytes:
        log.warning(
            "destination dead-lettered a job",
            extra={"tenant": self.tenant, "destination": self.id, "error": outcome.error},
        )
        return orjson.dumps(
            {
                "attempts": job.attempt,
                "lastError": outcome.error,
                "answer": outcome.answer,
                "deadAt": iso(now),
            }
        )

    def count(self, gateway: GatewayState, what: str, jobs: int) -> None:
        metrics = gateway.metrics
        counter = {
            "done": metrics.destination_forwarded,
            "failed": metrics.destination_failed,
            "dead": metrics.destination_dead,
        }[what]
        counter.inc(self.tenant, self.id, amount=jobs)

    async def observe(self, gateway: GatewayState) -> None:
        """The queue's length and its oldest job's age, for /metrics (at most once a second)."""
        if time.monotonic() - self.observed < OBSERVE_SECONDS:
            return
        self.observed = time.monotonic()
        length, oldest = await gateway.store.destination_queue(self.keys, self.id)
        age = 0.0 if oldest is None else max(0.0, (now_ms() - queue_order_ms(oldest)) / 1000)
        gateway.metrics.destination_queue.set(self.tenant, self.id, value=length)
        gateway.metrics.destination_oldest.set(self.tenant, self.id, value=age)


def queue_order(job: ClaimedJob) -> tuple[int, int]:
    ms, _, seq = job.stream_id.partition("-")
    return int(ms), int(seq or 0)


def queue_order_ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])


def contact_of(job: ClaimedJob) -> str:
    """The contact an event is about, as eSputnik knows it: its keyValue, else an identifying
    param; an event naming none is a chain of its own."""
    try:
        event = orjson.loads(job.body[1:])
    except orjson.JSONDecodeError:
        return job.stream_id
    key_value = event.get("keyValue")
    if isinstance(key_value, str):
        return "k:" + key_value
    for param in event.get("params") or ():
        if str(param.get("name", "")).lower() in CONTACT_PARAMS and param.get("value"):
            return f"{str(param['name']).lower()}:{param['value']}"
    return job.stream_id


def orders_body(unit: Unit) -> bytes:
    """eSputnik's `v1/orders` body: the orders as received."""
    return b'{"orders":[' + b",".join(job.body[1:] for job in unit) + b"]}"


def destination_deliverer(gateway: GatewayState) -> Deliverer:
    forwarders = [
        Forwarder(t.id, TenantKeys.for_tenant(t.id), d)
        for t in gateway.settings.tenants
        for d in t.destinations
    ]
    return Deliverer(gateway, forwarders, "destinations")
