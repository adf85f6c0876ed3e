"""The per-key rate limit is one token bucket in Redis: two gateway processes together let no
more through than one would (docs/operations.md, Rate limits)."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.support.faults import page_view
from tests.support.gateways import free_port, start_gateway, unique, write_config

pytestmark = pytest.mark.slow


async def test_rate_limit_is_shared_by_two_processes(tmp_path, redis_url):
    tenant = unique("rate")
    rate = 10
    config = write_config(tmp_path / "gateway.toml", [tenant], rate_limit_per_second=rate)
    ports = [free_port(), free_port()]
    env = {"REDIS_URL": redis_url}
    processes = [start_gateway(port, env, "--config", str(config)) for port in ports]
    statuses: list[int] = []
    retry_after: set[str] = set()
    try:
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"authorization": f"Bearer sk_{tenant}"},
                timeout=10,
            )
            for port in ports
        ]
        started = time.monotonic()
        for round_ in range(15):
            answers = await asyncio.gather(
                *(
                    c.post("/v1/event", json=page_view(f"{tenant}-{round_}-{i}", tenant))
                    for i, c in enumerate(clients * 2)
                )
            )
            for answer in answers:
                statuses.append(answer.status_code)
                if answer.status_code == 429:
                    retry_after.add(answer.headers["retry-after"])
                    assert answer.json()["error"] == "rate_limited"
            await asyncio.sleep(0.1)  # ~1.5 s in all: the refill is shared too
        elapsed = time.monotonic() - started
        # Another key of the same tenant has its own bucket.
        other = await clients[1].post(
            f"/v1/event?key=pk_{tenant}",
            json=page_view(f"{tenant}-site", tenant),
            headers={"authorization": ""},
        )
        for client in clients:
            await client.aclose()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [p.wait(20) for p in processes]
    allowed = statuses.count(200)
    ceiling = rate + rate * elapsed + 1  # the burst, the refill, one for rounding
    print(
        f"\nrate limit {rate}/s over 2 processes: sent={len(statuses)} in {elapsed:.2f}s "
        f"allowed={allowed} (ceiling {ceiling:.0f}) limited={statuses.count(429)} "
        f"retry-after={sorted(retry_after)}"
    )
    assert set(statuses) <= {200, 429}
    # Separate buckets per process would let about twice the ceiling through.
    assert rate <= allowed <= ceiling
    assert statuses.count(429) > 0 and all(int(v) >= 1 for v in retry_after)
    assert other.status_code == 200
    assert codes == [0, 0]
