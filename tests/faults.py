"""Tools for the fault tests: a config file, a steady load that keeps the books, a recount, and
a small-limits gateway whose stored data can be snapshotted.

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
from conftest import free_port, start_gateway, unique

from gateway.embedded.server import EmbeddedRedis
from gateway.redis.keys import TenantKeys

CLIENT_TIMEOUT = 6.0  # "no hang past a few seconds": slower than this fails the test


def write_config(path: Path, tenants: list[str], **tenant: object) -> Path:
    """A TOML config with one tenant per id, keys `sk_<id>` / `pk_<id>`."""
    lines: list[str] = []
    for tenant_id in tenants:
        lines += [
            "[[tenants]]",
            f'id = "{tenant_id}"',
            f'server_keys = ["sk_{tenant_id}"]',
            f'site_keys = ["pk_{tenant_id}"]',
            'allowed_origins = ["https://shop.example"]',
        ]
        lines += [f"{name} = {orjson.dumps(value).decode()}" for name, value in tenant.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


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
            tally.slowest = max(tally.slowest, time.monotonic() - started)
            status = response.status_code
            tally.statuses[str(status)] += 1
            if status == 200:
                answer = response.json()
                if len(ids) > 1 and (answer["accepted"] + answer["duplicates"] != len(ids)):
                    tally.failures.append(f"batch partly stored: {answer}")
                tally.acknowledged.extend(ids)
                tally.sent_at.update(dict.fromkeys(ids, started))
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
    with redis.Redis.from_url(redis_url) as client:
        while True:
            rows = client.xrange(TenantKeys.for_tenant(tenant).events, last, "+", count=5000)
            for _, fields in rows:
                found.add(orjson.loads(fields[b"e"])["eventId"])
            if len(rows) < 5000:
                return found
            last = "(" + rows[-1][0].decode()


async def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll an async or sync predicate until it is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


SMALL_LIMIT = 4096  # max_body_bytes of small_gateway, so bombs and floods are cheap


@dataclass
class Target:
    base: str
    tenant: str
    http: httpx.Client
    redis: redis.Redis
    log: Path

    def snapshot(self) -> dict[bytes, bytes | None]:
        match = TenantKeys.for_tenant(self.tenant).prefix + ":*"
        keys = sorted(self.redis.scan_iter(match=match, count=1000))
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
