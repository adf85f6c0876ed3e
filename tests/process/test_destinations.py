"""Destinations across processes (docs/destinations.md): a gateway killed with events queued
forwards them once restarted, and two gateways on one Redis forward each event once."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.esputnik import API_KEY, Answer, FakeEsputnik
from tests.support.gateways import free_port, start_gateway, stop_gateway, unique, write_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def config(path: Path, tenant: str, url: str, timeout: float) -> Path:
    write_config(path, [tenant])
    with path.open("a") as toml:
        toml.write(
            f'[[tenants.destinations]]\nkind = "esputnik"\nurl = "{url}"\n'
            f'api_key = "{API_KEY}"\ntimeout_seconds = {timeout}\n'
        )
    return path


def views(tenant: str, count: int) -> list[dict[str, object]]:
    return [
        {
            "eventTypeKey": "pageViewed",
            "keyValue": f"{tenant}-{n % 7}@example.com",  # several contacts, several events each
            "params": [{"name": "page", "value": f'{{"location":"https://shop.example/{n}"}}'}],
        }
        for n in range(count)
    ]


def pages_of(events: list[dict[str, object]]) -> list[str]:
    return [orjson.loads(orjson.dumps(e))["params"][0]["value"] for e in events]


def pages(fake: FakeEsputnik) -> Counter[str]:
    """How often each page view reached the fake (answered 2xx or not)."""
    return Counter(orjson.loads(r.body)["params"][0]["value"] for r in fake.at("/v1/event"))


async def post(port: int, tenant: str, events: list[dict[str, object]]) -> None:
    headers = {"authorization": f"Bearer sk_{tenant}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
        for start in range(0, len(events), 50):
            response = await http.post(
                "/v1/events", json=events[start : start + 50], headers=headers
            )
            assert response.status_code == 200 and response.json()["accepted"] == len(
                events[start : start + 50]
            ), response.text


async def test_killed_with_events_queued_forwards_them_after_restart(tmp_path, redis_url, esputnik):
    tenant = unique("dkill")
    esputnik.default = Answer(503, b"down")  # every event stays queued, retried
    # a short timeout keeps the lease of a job claimed when the process dies short too
    path = config(tmp_path / "gateway.toml", tenant, esputnik.url, 0.5)
    port, env = free_port(), {"REDIS_URL": redis_url}
    gateway = start_gateway(port, env, "--config", str(path))
    sent = views(tenant, 100)
    try:
        await post(port, tenant, sent)
        await wait_for(lambda: len(pages(esputnik)) >= 20, 30, "attempts before the kill")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        esputnik.default = Answer()  # eSputnik is back
        before = len(esputnik.requests)
        gateway = start_gateway(port, env, "--config", str(path))
        wanted = set(pages_of(sent))

        def delivered() -> bool:
            answered = esputnik.requests[before:]
            got = {orjson.loads(r.body)["params"][0]["value"] for r in answered}
            return got >= wanted

        await wait_for(delivered, 60, "every queued event forwarded after the restart")
    finally:
        assert stop_gateway(gateway) == 0


async def test_two_processes_forward_each_event_once(tmp_path, redis_url, esputnik):
    tenant = unique("dtwo")
    # a timeout no answer of the fake on a busy machine reaches: a request timed out is sent
    # again (at least once), which is not what this test is about
    path = config(tmp_path / "gateway.toml", tenant, esputnik.url, 30)
    env = {"REDIS_URL": redis_url}
    ports = [free_port(), free_port()]
    gateways = [start_gateway(port, env, "--config", str(path)) for port in ports]
    sent = views(tenant, 300)
    try:
        await post(ports[0], tenant, sent[:150])
        await post(ports[1], tenant, sent[150:])
        await wait_for(lambda: len(pages(esputnik)) >= 300, 60, "every event forwarded")
    finally:
        codes = [stop_gateway(gateway) for gateway in gateways]
    counts = pages(esputnik)
    assert len(counts) == 300
    assert max(counts.values()) == 1, [page for page, n in counts.items() if n > 1][:5]
    assert codes == [0, 0]
