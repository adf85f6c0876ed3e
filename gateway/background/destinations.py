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
import base64
import logging
import time

import httpx
import orjson

from gateway.background.delivery import MAX_RETRY_DELAY, Chain, Channel, Deliverer, Outcome, Unit
from gateway.background.posting import Poster, PostFailed
from gateway.clock import iso, now_ms
from gateway.redaction import redacted
from gateway.redis.keys import TenantKeys
from gateway.redis.results import ClaimedJob
from gateway.settings import Destination
from gateway.state import GatewayState

log = logging.getLogger("gateway.destinations")

RETRY_INITIAL_SECONDS = 1.0  # first retry delay, doubled per attempt (with jitter)
OBSERVE_SECONDS = 1.0  # how often the queue's length and age are read for /metrics
ORDER = b"o"  # a queued job's kind: "e" an event, "o" an order (lib_destinations.lua)
CONTACT_PARAMS = ("email", "phone", "contactkey", "externalcustomerid")


class Forwarder(Channel):
    """One destination of a tenant."""

    source = "queue"
    retry_initial_seconds = RETRY_INITIAL_SECONDS
    ack_later = True  # a call per forwarded event cost the ingesting process (measured)

    def __init__(self, tenant: str, keys: TenantKeys, destination: Destination) -> None:
        self.tenant, self.keys, self.destination = tenant, keys, destination
        self.timeout_seconds = destination.timeout_seconds
        self.retry_budget_seconds = destination.max_attempt_seconds
        self.longest_chain = self.max_claim  # one contact's jobs may fill a whole claim
        basic = base64.b64encode(f"gateway:{destination.api_key}".encode()).decode()
        self.poster = Poster(
            destination.url,
            {
                "content-type": "application/json",
                "user-agent": "gateway-destinations/1",
                "authorization": f"Basic {basic}",  # never logged: Poster keeps it to itself
            },
        )
        self.observed = 0.0
        # The chain of each contact with events under way in this process: the contact's events
        # claimed later join it, so they are sent after those before them.
        self.running: dict[str, Chain] = {}
        self.contacts: dict[int, str] = {}  # id(chain) -> its contact

    @property
    def id(self) -> str:
        return self.destination.id

    @property
    def group(self) -> str:
        return "forwarder"

    async def prepare(self, gateway: GatewayState) -> None:
        await gateway.store.create_queue_group(self.keys, self.id, self.group)

    def plan(self, jobs: list[ClaimedJob]) -> list[Chain]:
        """Each contact's events one after the other, in queue order (after those of it still
        under way); the orders in one batch."""
        chains: list[Chain] = []
        orders: list[ClaimedJob] = []
        for job in sorted(jobs, key=queue_order):
            if job.body[:1] == ORDER:
                orders.append(job)
                continue
            contact = contact_of(job)
            chain = self.running.get(contact)
            if chain is None:
                chain = self.running[contact] = []
                self.contacts[id(chain)] = contact
                chains.append(chain)
            chain.append([job])
        if orders:
            chains.append([orders])  # a claim never holds more than eSputnik's 1,000 a batch
        return chains

    def ended(self, chain: Chain) -> None:
        contact = self.contacts.pop(id(chain), None)
        if contact is not None and self.running.get(contact) is chain:
            del self.running[contact]

    async def send(self, client: httpx.AsyncClient, unit: Unit) -> Outcome:
        """One POST (its own client, not `client`: posting.py)."""
        if unit[0].body[:1] == ORDER:
            path, body = "/v1/orders", orders_body(unit)
        else:
            path, body = "/v1/event", unit[0].body[1:]
        try:
            async with asyncio.timeout(self.timeout_seconds):
                answer = await self.poster.post(path, body)
        except TimeoutError:
            return Outcome(f"timed out after {self.timeout_seconds:g} s")
        except (PostFailed, OSError) as exc:
            url = self.destination.url
            return Outcome(f"{type(exc).__name__}: {exc}".replace(url, redacted(url)))
        status = answer.status
        if 200 <= status < 300:
            return Outcome()
        error = f"HTTP {status}"
        if status == 429 or status >= 500:
            return Outcome(error, retry_after(answer.retry_after))
        return Outcome(error, final=True, answer=answer.body.decode(errors="replace"))

    def close(self) -> None:
        self.poster.close()

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


def retry_after(value: str | None) -> float | None:
    """A Retry-After header's seconds (its HTTP-date form is not used by the APIs we call)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(seconds, MAX_RETRY_DELAY) if seconds >= 0 else None  # nan too


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
