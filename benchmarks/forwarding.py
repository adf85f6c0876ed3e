"""`make bench`'s destination figures (docs/destinations.md): a config whose tenant `destination`
forwards to a fake eSputnik (bare_protocol.py: it answers 200 to anything), and the forwarder's
own throughput: events queued while no gateway runs, then drained by one gateway process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.direct import DirectIngest
from benchmarks.harness import HERE, free_port, fresh_redis, gateway_server, python_server, running
from gateway.redis.keys import TenantKeys

TENANT = "destination"
FORWARDED = 20_000  # events the forwarder drains in its row


def destination_config(source: Path, target: Path, url: str) -> None:
    """`source`'s config plus the tenant `destination`, forwarding to `url`."""
    target.write_text(
        source.read_text()
        + "\n".join(
            [
                "[[tenants]]",
                f'id = "{TENANT}"',
                f'server_keys = ["sk_bench_{TENANT}"]',
                f'site_keys = ["pk_bench_{TENANT}"]',
                'allowed_origins = ["https://shop.example"]',
                "[[tenants.destinations]]",
                'kind = "esputnik"',
                f'url = "{url}"',
                'api_key = "bench-key"',
                "",
            ]
        )
    )


def queue(client: redis.Redis, config: Path, work: Path, count: int) -> str:
    """Queue `count` product views of as many contacts for the destination, stored without HTTP
    (direct.py); the queue's key."""
    ingest = DirectIngest.open(client, config, work, TENANT)
    ingest.store(
        (
            {
                "eventTypeKey": "productViewed",
                "keyValue": f"forward{n}@example.com",
                "params": [{"name": "product", "value": '{"productId":"P1","price":4.5}'}],
            }
            for n in range(count)
        ),
        site_key=False,
        forward=True,
    )
    destination = ingest.tenant.destinations[0].id
    return TenantKeys.for_tenant(TENANT).destination(destination, "q")


def drain(client: redis.Redis, key: str, timeout: float = 300.0) -> dict[str, Any]:
    """Wait, with a gateway running, until the queue `key` is empty: events/s from the first
    forwarded event to the last."""
    queued = client.xlen(key)
    deadline = time.monotonic() + timeout
    while client.xlen(key) >= queued:
        if time.monotonic() > deadline:
            raise RuntimeError("the forwarder did not start")
        time.sleep(0.01)
    started, left = time.monotonic(), client.xlen(key)
    while client.xlen(key):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the forwarder left {client.xlen(key)} of {queued} events")
        time.sleep(0.01)
    seconds = time.monotonic() - started
    return {"events": queued, "seconds": seconds, "eps": left / seconds if seconds else 0.0}


def throughput(client: redis.Redis, work: Path, redis_url: str) -> dict[str, Any]:
    """The forwarder's own events/s: FORWARDED events queued for the destination while no
    gateway runs, then drained by one 1-worker gateway into bare_protocol.py."""
    config = work / "destination.toml"
    port = free_port()
    esputnik = python_server("esputnik", work, port, {}, str(HERE / "bare_protocol.py"), str(port))
    destination_config(work / "gateway.toml", config, f"http://127.0.0.1:{port}/api")
    fresh_redis(client)
    key = queue(client, config, work, FORWARDED)
    with (
        running(esputnik),
        running(gateway_server("gateway-forward", work, redis_url, 1, config.name)),
    ):
        forwarded = drain(client, key)
    print(f"  forwarder      {forwarded['eps']:>9,.0f} events/s to a local fake", flush=True)
    return forwarded
