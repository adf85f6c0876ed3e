"""Two real gateway processes share a price drop's fan-out; one is killed in the middle of it,
and every watcher still gets exactly one trigger (docs/triggers.md, Price drops and back in
stock)."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import httpx
import orjson
import pytest

from gateway.redis.keys import TenantKeys
from tests.support.cluster import sync_client
from tests.support.gateways import free_port, start_gateway, unique, write_config
from tests.support.products import seen
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

WATCHERS = 3000  # per product: 30 steps of fanout.lua each
PRODUCTS = ("P1", "P2")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


async def post(client: httpx.AsyncClient, path: str, body: object) -> dict[str, object]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def test_a_process_killed_mid_fan_out_leaves_each_watcher_one_trigger(tmp_path, redis_url):
    tenant = unique("fan")
    path = write_config(tmp_path / "gateway.toml", [tenant])
    ports = [free_port(), free_port()]
    processes = [
        start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(path)) for port in ports
    ]
    redis = sync_client(redis_url)
    auth = {"authorization": f"Bearer sk_{tenant}"}
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=60)
        for port in ports
    ]
    try:
        views = [seen(f"w{n}@x.io", p, price=100) for n in range(WATCHERS) for p in PRODUCTS]
        for start in range(0, len(views), 1000):
            answer = await post(
                clients[start // 1000 % 2], "/v1/events", views[start : start + 1000]
            )
            assert answer["accepted"] == 1000, answer
        products = [{"productId": p, "price": 50, "currencyCode": "USD"} for p in PRODUCTS]
        assert (await post(clients[1], "/v1/products", {"products": products}))["updated"] == 2
        keys = TenantKeys.for_tenant(tenant)

        def under_way() -> bool:  # a chunk done, more to do
            return any(redis.hexists(keys.product(p, ":f"), "score") for p in PRODUCTS)

        await wait_for(under_way, 30, "a fan-out under way")
        processes[0].kill()  # SIGKILL: whatever it held stays held until its lease ends
        await wait_for(lambda: redis.zcard(keys.fanouts) == 0, 60, "the fan-outs to finish")
        rows = redis.xrange(keys.triggers)
        found = [orjson.loads(fields[b"trigger"]) for _, fields in rows]
        drops = [t for t in found if t["type"] == "priceDrop"]
        for product_id in PRODUCTS:
            told = [t["contact"]["email"] for t in drops if t["product"]["productId"] == product_id]
            assert len(told) == WATCHERS, product_id
            assert set(told) == {f"w{n}@x.io" for n in range(WATCHERS)}, product_id
        await asyncio.sleep(0.5)  # a late duplicate, if there were one, would show by now
        assert len(redis.xrange(keys.triggers)) == len(rows)
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            stop(process)
        redis.close()
