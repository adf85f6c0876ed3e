"""The delivery machinery webhooks and destinations share (docs/triggers.md, docs/destinations.md).

A channel (one webhook, one destination) reads its source stream through its own consumer group;
webhook.lua moves what it reads into the channel's schedule (due times) in the step that XACKs it.
Due jobs are claimed with a lease: a process dying mid-POST leaves them to come due again (at
least once), and two processes never hold one job at once. Claimed jobs are sent as chains of
requests, each chain in order (a destination's: one contact's), the chains side by side. A failed
attempt is retried after an exponential delay with jitter (or a longer Retry-After) until the job
is `retry_budget_seconds` old (the last delay clipped to end there); one made at that age, or
refused for good (`Outcome.final`), goes to the dead letters. A slow endpoint never slows ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from abc import ABC, abstractmethod
from asyncio import FIRST_COMPLETED
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from gateway.background.loop import MAX_BACKOFF, pause
from gateway.clock import now_ms
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
from gateway.state import GatewayState

log = logging.getLogger("gateway.delivery")

POLL_SECONDS = 0.1
READ_BATCH = 100
MAX_IN_FLIGHT = 32  # concurrent chains of requests per process, over all channels
MAX_RETRY_DELAY = 600.0  # backoff cap, seconds
LEASE_MARGIN_MS = 1000  # a claimed job comes due again this long after its chain's time
STOP_GRACE = 2.0  # seconds in-flight POSTs get at shutdown


def retry_delay(initial: float, attempt: int) -> float:
    """Exponential backoff with jitter: spreads retries of many jobs over time."""
    return float(min(MAX_RETRY_DELAY, initial * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request went: `error` None when it was answered 2xx."""

    error: str | None = None
    retry_after: float | None = None  # seconds the answer asked to wait
    final: bool = False  # refused for good: no retry
    answer: str | None = None  # the refusal's body, kept in the dead letter


Unit = Sequence[ClaimedJob]  # the jobs one request sends
Chain = list[Unit]  # requests sent one after the other; a channel may add to a running one


class Channel(ABC):
    """One webhook or destination of a tenant: where its jobs come from and how they are sent."""

    tenant: str
    keys: TenantKeys
    source: str  # "triggers" or "queue" (arguments.WebhookStep)
    types: str = ""  # only these trigger types ("" all), for a webhook
    timeout_seconds: float
    retry_initial_seconds: float
    retry_budget_seconds: float
    max_claim: int = MAX_IN_FLIGHT  # unfinished jobs a process holds of the channel at most
    longest_chain: int = 1  # requests one chain may hold: the lease covers them all
    ack_later: bool = False  # delivered jobs forgotten at the next pass, many in one call

    @property
    @abstractmethod
    def id(self) -> str: ...

    @property
    def group(self) -> str:
        return f"webhook:{self.id}"

    @abstractmethod
    async def prepare(self, gateway: GatewayState) -> None:
        """Create the channel's consumer group."""

    def plan(self, jobs: list[ClaimedJob]) -> list[Chain]:
        """The claimed jobs as new chains of requests (by default each job alone); a channel may
        add some to chains still running instead."""
        return [[[job]] for job in jobs]

    def delivered(self, job: ClaimedJob) -> str:
        """What WebhookDone is told of a delivered job (a webhook's: `<id>:<trigger type>`)."""
        return job.stream_id

    def dead_counted(self, job: ClaimedJob) -> tuple[str, int]:
        """WebhookDead's trigger type and its creation (ms) to count, "" for none."""
        return "", 0

    def ended(self, chain: Chain) -> None:
        """Nothing is added to `chain` any more (it is done, or failed and rescheduled)."""
        return None

    def close(self) -> None:
        """The process is stopping: close what the channel holds open."""
        return None

    @abstractmethod
    async def send(self, client: httpx.AsyncClient, unit: Unit) -> Outcome: ...

    @abstractmethod
    def dead_entry(self, job: ClaimedJob, outcome: Outcome, now: int) -> bytes:
        """The dead letter's JSON for a job that failed for good."""

    @abstractmethod
    def count(self, gateway: GatewayState, what: str, jobs: int) -> None:
        """Count delivered ("done"), failed ("failed") or dead-lettered ("dead") jobs."""

    async def observe(self, gateway: GatewayState) -> None:
        """Read what /metrics shows of the channel, once per pass: by default nothing."""
        return None


class Deliverer:
    """Runs every channel of the process: one pass each per POLL_SECONDS."""

    def __init__(self, gateway: GatewayState, channels: Sequence[Channel], name: str) -> None:
        self.gateway = gateway
        self.channels = list(channels)
        self.name = name
        self.ready: set[str] = set()  # channels whose consumer group exists
        self.sending: set[asyncio.Task[None]] = set()
        self.held = {channel.id: 0 for channel in self.channels}  # unfinished jobs per channel
        # Delivered jobs of `ack_later` channels, forgotten at their next pass (leased till then).
        self.delivered: dict[str, list[str]] = {channel.id: [] for channel in self.channels}

    async def prepare(self) -> None:
        for channel in self.channels:
            await channel.prepare(self.gateway)
            self.ready.add(channel.id)

    async def run(self, stop: asyncio.Event) -> None:
        if not self.channels:
            return
        backoff = POLL_SECONDS
        async with httpx.AsyncClient(follow_redirects=False) as client:
            try:
                while not stop.is_set():
                    failed = busy = False
                    # Each channel on its own: on a cluster, a tenant whose slot is down must not
                    # hold back the deliveries of the channels after it.
                    for channel in self.channels:
                        try:
                            if channel.id not in self.ready:
                                await channel.prepare(self.gateway)
                                self.ready.add(channel.id)
                            busy = await self.poll(client, channel) or busy
                        except Exception as exc:
                            failed = True
                            if "NOGROUP" in str(exc):
                                self.ready.discard(channel.id)  # Redis lost its data: made again
                            log.warning(
                                f"{self.name}: pass failed",
                                extra={"channel": channel.id, "error": str(exc)},
                            )
                    if failed or not busy:
                        await pause(stop, backoff if failed else POLL_SECONDS)
                    else:
                        await self.settle(stop)
                    backoff = min(MAX_BACKOFF, backoff * 2) if failed else POLL_SECONDS
            finally:
                # POSTs under way get a moment to finish and be recorded; the rest are left to
                # their lease, which brings them back (here or in another process).
                if self.sending:
                    await asyncio.wait(self.sending, timeout=STOP_GRACE)
                for task in self.sending:
                    task.cancel()
                await asyncio.gather(*self.sending, return_exceptions=True)
                for channel in self.channels:
                    channel.close()
                    with contextlib.suppress(Exception):  # else sent again once leased out
                        await self.forget_delivered(channel)

    async def settle(self, stop: asyncio.Event) -> None:
        """With a backlog: the next pass once a chain has ended and at least half the slots are
        free, so that each claim (Redis calls) brings a number of jobs, not one."""
        if not self.sending:
            await asyncio.sleep(0)
            return
        await asyncio.wait(self.sending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        while len(self.sending) > MAX_IN_FLIGHT // 2 and not stop.is_set():
            await asyncio.wait(self.sending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)

    async def poll(self, client: httpx.AsyncClient, channel: Channel) -> bool:
        """One pass of a channel; whether it may have more due jobs than it could claim."""
        store, prefix = self.gateway.store, channel.keys.prefix
        step = (prefix, channel.id, channel.source)
        await self.forget_delivered(channel)
        enqueue = WebhookEnqueue(*step, channel.group, channel.types, READ_BATCH)
        backlog = await store.run("webhook", enqueue, now_ms()) >= READ_BATCH
        await channel.observe(self.gateway)
        count = min(MAX_IN_FLIGHT - len(self.sending), channel.max_claim - self.held[channel.id])
        if count <= 0:
            return True
        # Each request of a chain ends within the timeout; the chain's lease covers them all, and
        # one timeout more for the Redis calls between (a single request: twice its timeout).
        chain_ms = channel.timeout_seconds * 1000 * (channel.longest_chain + 1)
        claim = WebhookClaim(*step, int(chain_ms) + LEASE_MARGIN_MS, count)
        jobs = ClaimedJob.read_all(await store.run("webhook", claim, now_ms()))
        self.held[channel.id] += len(jobs)
        for chain in channel.plan(jobs):
            task = asyncio.create_task(self.deliver(client, channel, chain))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)
        return backlog or len(jobs) == count

    async def forget_delivered(self, channel: Channel) -> None:
        delivered = self.delivered[channel.id]
        if not delivered:
            return
        self.delivered[channel.id] = []  # those delivered meanwhile go with the next call
        try:
            done = WebhookDone(*self.step(channel), ",".join(delivered))
            await self.gateway.store.run("webhook", done, now_ms())
        except BaseException:
            self.delivered[channel.id] += delivered
            raise

    async def deliver(self, client: httpx.AsyncClient, channel: Channel, chain: Chain) -> None:
        place = 0
        try:
            while place < len(chain):  # it may grow while it runs
                unit = chain[place]
                started = now_ms()  # an attempt begun before the budget's end is never the last
                outcome = await channel.send(client, unit)
                due = await self.record(channel, unit, outcome, started)
                place += 1
                if due is not None:
                    # The chain's later requests wait behind this one: they keep their order.
                    channel.ended(chain)  # before any await: nothing is added after `later`
                    later = [job for rest in chain[place:] for job in rest]
                    for offset, job in enumerate(later, start=1):
                        retry = WebhookRetry(*self.step(channel), job.stream_id, due + offset)
                        await self.gateway.store.run("webhook", retry, now_ms())
                    return
        except StoreUnavailable as exc:
            # The lease brings the jobs back once Redis answers again.
            log.warning(f"{self.name}: could not record an attempt", extra={"error": str(exc)})
        except Exception:  # not expected; the lease brings the jobs back
            log.exception(f"{self.name}: a delivery failed", extra={"channel": channel.id})
        finally:
            channel.ended(chain)
            self.held[channel.id] -= sum(len(unit) for unit in chain)

    def step(self, channel: Channel) -> tuple[str, str, str]:
        return channel.keys.prefix, channel.id, channel.source

    async def record(
        self, channel: Channel, unit: Unit, outcome: Outcome, started: int
    ) -> int | None:
        """Record a request's outcome for its jobs: the time they are retried at, if they are."""
        store, step, gateway = self.gateway.store, self.step(channel), self.gateway
        if outcome.error is None:
            channel.count(gateway, "done", len(unit))
            delivered = [channel.delivered(job) for job in unit]
            if channel.ack_later:
                self.delivered[channel.id] += delivered
            else:
                await store.run("webhook", WebhookDone(*step, ",".join(delivered)), now_ms())
            return None
        channel.count(gateway, "failed", len(unit))
        now = now_ms()
        retried: int | None = None
        for job in unit:
            born = int(job.stream_id.partition("-")[0])  # stream ids start with the append time
            spent = born + math.ceil(channel.retry_budget_seconds * 1000)
            if not outcome.final and started < spent:
                # Retried until the budget is spent: a delay that would overshoot it is clipped,
                # so the last attempt is made at its end rather than up to a whole (10-minute)
                # delay before it.
                delay = retry_delay(channel.retry_initial_seconds, job.attempt)
                delay = max(delay, min(outcome.retry_after or 0.0, MAX_RETRY_DELAY))
                due = min(now + int(delay * 1000), spent)
                await store.run("webhook", WebhookRetry(*step, job.stream_id, due), now)
                retried = due if retried is None else max(retried, due)
                continue
            entry = channel.dead_entry(job, outcome, now)
            dead = WebhookDead(*step, job.stream_id, entry, *channel.dead_counted(job))
            if await store.run("webhook", dead, now):
                channel.count(gateway, "dead", 1)
        return retried
