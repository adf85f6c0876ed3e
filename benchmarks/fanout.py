"""`make bench`'s product fan-out: a price drop for a product with 100,000 watchers
(docs/triggers.md, Price drops and back in stock)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from benchmarks.direct import DirectIngest
from benchmarks.harness import WATCHED, WATCHERS
from benchmarks.rows import Bench
from gateway.redis.keys import TenantKeys


def store_watchers(bench: Bench, watchers: int) -> float:
    """`watchers` contacts with an email view WATCHED at 45.5 USD, each a watcher of it; stored
    without HTTP (direct.py). Returns the seconds it took."""
    began = time.time()
    ingest = DirectIngest.open(bench.redis, bench.work / "gateway.toml", bench.work, "products")
    product = json.dumps({"productId": WATCHED, "price": 45.5, "isInStock": 1})
    ingest.store(
        {
            "eventTypeKey": "productViewed",
            "keyValue": f"watcher{n}@example.com",
            "params": [
                {"name": "product", "value": product},
                {"name": "currencyCode", "value": "USD"},
            ],
        }
        for n in range(watchers)
    )
    return time.time() - began


@dataclass
class Probes:
    """While a fan-out runs (or not): POST /v1/products answer times, one request at a time,
    and ingest throughput, batches of 100 anonymous page views, one request at a time."""

    base: str
    tenant: str = "products"
    stop: threading.Event = field(default_factory=threading.Event)
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.post_products),
            threading.Thread(target=self.ingest),
        ]
        began = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.seconds = time.time() - began

    def post_products(self) -> None:
        body = orjson.dumps(
            {"products": [{"productId": "PROBE", "price": 10, "currencyCode": "USD"}]}
        )
        headers = {
            "authorization": f"Bearer sk_bench_{self.tenant}",
            "content-type": "application/json",
        }
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                began = time.perf_counter()
                answer = client.post("/v1/products", content=body, headers=headers)
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /v1/products: {answer.status_code} {answer.text}")

    def ingest(self) -> None:
        page = {"eventTypeKey": "pageViewed", "params": {"page": '{"location":"https://s.x/"}'}}
        headers = {
            "authorization": f"Bearer sk_bench_{self.tenant}",
            "content-type": "application/json",
        }
        with httpx.Client(base_url=self.base, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                batch = [{**page, "visitorId": f"probe-{n + i}"} for i in range(100)]
                n += 100
                answer = client.post("/v1/events", content=orjson.dumps(batch), headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /v1/events: {answer.status_code} {answer.text}")
                self.events += answer.json()["accepted"]

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


def product_fanout(
    bench: Bench, base: str, watchers: int = WATCHERS, idle_seconds: float = 5.0
) -> dict[str, Any]:
    """A price drop for a product with `watchers` watchers, through a running gateway at `base`:
    Redis bytes per watch, the time until every watcher's priceDrop is on the stream, and the
    POST /v1/products p99 and ingest throughput while the fan-out runs beside their idle figures
    (docs/triggers.md, Price drops and back in stock)."""
    keys = TenantKeys.for_tenant("products")
    store_seconds = store_watchers(bench, watchers)
    index = keys.product(WATCHED, ":w")
    bytes_per_watch = (bench.redis.memory_usage(index, samples=0) or 0) / watchers
    idle = Probes(base)
    timer = threading.Timer(idle_seconds, idle.stop.set)
    timer.start()
    idle.run()
    busy = Probes(base)
    prober = threading.Thread(target=busy.run)
    headers = {"authorization": "Bearer sk_bench_products"}
    drop = {"products": [{"productId": WATCHED, "price": 40, "currencyCode": "USD"}]}
    began = time.time()
    answer = httpx.post(f"{base}/v1/products", json=drop, headers=headers, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"the price drop was refused: {answer.status_code} {answer.text}")
    prober.start()
    deadline = began + 300
    emitted = 0
    while time.time() < deadline:
        emitted = bench.redis.xlen(keys.triggers)
        if emitted >= watchers and not bench.redis.zcard(keys.fanouts):
            break
        time.sleep(0.05)
    emit_seconds = time.time() - began
    busy.stop.set()
    prober.join()
    emitted = bench.emitted(keys.triggers, watchers, "product fan-out")
    result = {
        "watchers": watchers,
        "store_seconds": store_seconds,
        "bytes_per_watch": bytes_per_watch,
        "triggers": emitted,
        "emit_seconds": emit_seconds,
        "post_p99_idle_ms": idle.p99_ms(),
        "post_p99_fanout_ms": busy.p99_ms(),
        "posts_idle": len(idle.latencies_ms),
        "posts_fanout": len(busy.latencies_ms),
        "ingest_eps_idle": idle.events / idle.seconds,
        "ingest_eps_fanout": busy.events / busy.seconds,
    }
    print(
        f"  product fan-out {watchers:,} watchers: all told in {emit_seconds:.2f} s, POST "
        f"/v1/products p99 {result['post_p99_fanout_ms']:.1f} ms (idle "
        f"{result['post_p99_idle_ms']:.1f}), {bytes_per_watch:.0f} B per watch",
        flush=True,
    )
    return result


def fanout_markdown(fanout: dict[str, Any]) -> str:
    return (
        f"Product fan-out (1 worker): a price drop for a product with {fanout['watchers']:,} "
        f"watchers: {fanout['triggers']:,} priceDrop triggers emitted in "
        f"**{fanout['emit_seconds']:.2f} s** (target 60 s); POST /v1/products p99 "
        f"**{fanout['post_p99_fanout_ms']:.1f} ms** during it (target 50 ms; idle "
        f"{fanout['post_p99_idle_ms']:.1f} ms); ingest, one client sending batches of 100, "
        f"{fanout['ingest_eps_fanout']:,.0f} events/s during it, {fanout['ingest_eps_idle']:,.0f} "
        f"idle; Redis memory per watch **{fanout['bytes_per_watch']:.0f} B** (`MEMORY USAGE` of "
        "the watch index; target 150 B).\n"
    )
