"""Tools for the fault tests: a steady load that keeps the books, a recount, and a small-limits
gateway whose stored data can be snapshotted.

The load sends events with client-chosen `eventId`s, so that afterwards every acknowledged event
can be looked for in the tenant's Redis stream by its id. Each answer is filed by what it means:
200 acknowledged, 503 refused (must carry Retry-After), no answer (the connection died: the
gateway was killed), anything else or a timeout is a failure the test reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import redis

from gateway.embedded.server import EmbeddedRedis
from gateway.redis.keys import TenantKeys
from tests.support.gateways import free_port, start_gateway, unique, write_config

CLIENT_TIMEOUT = 6.0  # "no hang past a few seconds": slower than this fails the test


def page_view(event_id: str, contact: str) -> dict[str, object]:
    return {
        "eventTypeKey": "pageViewed",
        "eventId": event_id,
        "keyValue": f"{contact}@example.com",
        "params": [{"name": "page", "value": '{"location":"https://shop.example/p"}'}],
    }


@dataclass
class Tally:
    sent: int = 0
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
    sent_at: dict[str, float] = field(default_factory=dict)  # acknowledged eventId -> time sent
    answered_at: dict[str, float] = field(default_factory=dict)  # ... -> time acknowledged

    def figures(self, found: int) -> str:
        lost = len(self.acknowledged) - found
        return (
            f"sent={self.sent} acknowledged={len(self.acknowledged)} found={found} lost={lost} "
            f"answers={dict(self.statuses)} slowest={self.slowest:.2f}s"
        )


async def steady_load(
    base_url: str,
    key: str,
    stop: asyncio.Event,
    tally: Tally,
    prefix: str,
    workers: int = 6,
    batch: int = 10,
) -> None:
    """`workers` clients in a loop: odd rounds one `/v1/event`, even rounds a batch."""

    async def worker(http: httpx.AsyncClient, w: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            ids = [f"{prefix}-{w}-{n}-{i}" for i in range(1 if n % 2 else batch)]
            bodies = [page_view(i, f"{prefix}-{w}-{n % 50}") for i in ids]
            path, body = ("/v1/event", bodies[0]) if len(ids) == 1 else ("/v1/events", bodies)
            tally.sent += len(ids)
            started = time.monotonic()
            try:
                response = await http.post(path, json=body)
            except httpx.TimeoutException:
                tally.failures.append(f"timeout after {time.monotonic() - started:.1f}s")
                continue
            except httpx.TransportError:
                tally.statuses["no answer"] += 1
                await asyncio.sleep(0.05)  # the gateway is down; do not spin
                continue
            answered = time.monotonic()
            tally.slowest = max(tally.slowest, answered - started)
            status = response.status_code
            tally.statuses[str(status)] += 1
            if status == 200:
                answer = response.json()
                if len(ids) > 1 and (answer["accepted"] + answer["duplicates"] != len(ids)):
                    tally.failures.append(f"batch partly stored: {answer}")
                tally.acknowledged.extend(ids)
                tally.sent_at.update(dict.fromkeys(ids, started))
                tally.answered_at.update(dict.fromkeys(ids, answered))
            elif status == 503:
                if "retry-after" not in response.headers:
                    tally.failures.append("503 without Retry-After")
                await asyncio.sleep(0.02)
            else:
                tally.failures.append(f"{status}: {response.text[:200]}")

    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"authorization": f"Bearer {key}"},
        timeout=CLIENT_TIMEOUT,
        limits=limits,
    ) as http:
        await asyncio.gather(*(worker(http, w) for w in range(workers)))


class Load:
    """`steady_load` running in the background. `finish()` stops it and waits for the clients;
    `abandon()` only tells them to stop (for a `finally` after a failed assertion)."""

    def __init__(self, base_url: str, key: str, prefix: str) -> None:
        self.tally = Tally()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(steady_load(base_url, key, self._stop, self.tally, prefix))

    async def finish(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, 20)

    def abandon(self) -> None:
        self._stop.set()


def stored_event_ids(redis_url: str, tenant: str) -> set[str]:
    """Every eventId in the tenant's raw event stream, read over a client of its own."""
    found: set[str] = set()
    last = "-"
    stream = TenantKeys.for_tenant(tenant).events
    with redis.Redis.from_url(redis_url) as client:
        while True:
            rows = client.xrange(stream, last, "+", count=5000)
            for _, fields in rows:
                found.add(orjson.loads(fields[b"e"])["eventId"])
            if len(rows) < 5000:
                return found
            last = "(" + rows[-1][0].decode()


SMALL_LIMIT = 4096  # max_body_bytes of small_gateway, so bombs and floods are cheap


@dataclass
class Target:
    base: str
    tenant: str
    http: httpx.Client
    redis: redis.Redis
    log: Path

    def snapshot(self) -> dict[bytes, bytes | None]:
        """Every key of the tenant DUMPed but three: the tally, which the detector drains in the
        background (a trigger's count, from an order stored earlier, may be there or gone), and
        the refused-request log and the per-minute counts, which record refusals by design
        (docs/dashboard.md)."""
        tenant = TenantKeys.for_tenant(self.tenant)
        stats = tenant.stats(0).removesuffix("0").encode()
        skipped = {tenant.tally.encode(), tenant.refused.encode()}
        keys = sorted(
            key
            for key in self.redis.scan_iter(match=f"{tenant.prefix}:*", count=1000)
            if key not in skipped and not key.startswith(stats)
        )
        dumps = self.redis.pipeline(transaction=False)
        for key in keys:
            dumps.dump(key)
        return dict(zip(keys, dumps.execute(), strict=True))


@contextlib.contextmanager
def small_gateway(folder: Path) -> Iterator[Target]:
    """A real gateway process with max_body_bytes = SMALL_LIMIT and max_batch = 5 on a Redis of
    its own; on exit it must not have died nor logged a traceback or an error."""
    # Its own Redis: the snapshot SCANs the whole keyspace twice per request, so keep it small.
    server = EmbeddedRedis(folder / "redis", port=free_port())
    server.start()
    tenant = unique("hostile")
    config = write_config(folder / "gateway.toml", [tenant])
    limits = f"[gateway]\nmax_body_bytes = {SMALL_LIMIT}\nmax_batch = 5\n"
    config.write_text(limits + config.read_text())
    port = free_port()
    log = folder / "gateway.log"
    process = start_gateway(port, {"REDIS_URL": server.url}, "--config", str(config), log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            client = redis.Redis.from_url(server.url)
            try:
                yield Target(base, tenant, http, client, log)
            finally:
                client.close()
        assert process.poll() is None, "the gateway died"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(20)
        server.stop()
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text and '"level":"error"' not in text, text[-3000:]
