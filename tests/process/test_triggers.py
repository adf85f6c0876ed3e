"""Real gateway processes on one Redis: each trigger exactly once, none lost to a SIGKILL, delayed
ones (docs/triggers.md, Trigger policies) too."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateway.redis.keys import TenantKeys
from tests.support.gateways import free_port, start_gateway, unique
from tests.support.triggering import Receiver, page, product
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

TIMEOUT = 0.5


def config(
    path: Path,
    tenant: str,
    hook_url: str,
    retry_initial: float = 0.1,
    timeout: float = 0.5,
    delay: float = 0,
) -> Path:
    """`timeout` is the webhook's: short, so that the jobs a killed process had claimed come due
    again soon (after twice it and a second). `delay`: the tenant's triggers.delay_seconds."""
    path.write_text(
        f'[[tenants]]\nid = "{tenant}"\nserver_keys = ["sk_{tenant}"]\n'
        f"visit_timeout_seconds = {TIMEOUT}\n"
        f'[[tenants.webhooks]]\nurl = "{hook_url}"\nsecret = "whsec_process"\n'
        f"timeout_seconds = {timeout}\nretry_initial_seconds = {retry_initial}\n"
        f"[tenants.triggers]\ndelay_seconds = {delay}\n"
    )
    return path


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


async def all_triggers(base: str, tenant: str) -> list[dict[str, object]]:
    auth = {"authorization": f"Bearer sk_{tenant}"}
    async with httpx.AsyncClient(base_url=base, headers=auth) as client:
        body = (await client.get("/v1/triggers", params={"limit": 1000})).json()
    found: list[dict[str, object]] = body["triggers"]
    return found


async def post_events(base: str, tenant: str, events: list[dict[str, object]]) -> None:
    auth = {"authorization": f"Bearer sk_{tenant}"}
    async with httpx.AsyncClient(base_url=base, headers=auth) as client:
        response = await client.post("/v1/events", json=events)
        assert response.json()["accepted"] == len(events), response.text


async def each_once(
    survivor: str, tenant: str, receiver: Receiver, count: int
) -> list[dict[str, object]]:
    """The tenant's `count` triggers, read from the surviving process once all are emitted and
    delivered and a duplicate has had time to show up: each once, each an abandonedBrowse."""

    async def all_emitted() -> bool:
        return len(await all_triggers(survivor, tenant)) >= count

    await wait_for(all_emitted, 30, f"{count} triggers")
    await wait_for(
        lambda: len({h["x-gateway-id"] for h, _, _ in receiver.requests}) == count,
        30,
        f"{count} triggers delivered",
    )
    await asyncio.sleep(3 * TIMEOUT)
    found = await all_triggers(survivor, tenant)
    assert len(found) == count
    assert len({t["id"] for t in found}) == count
    assert {t["type"] for t in found} == {"abandonedBrowse"}
    return found


async def run_two(tmp_path: Path, redis_url: str, kill_first: bool, count: int) -> None:
    receiver = Receiver()
    tenant = unique("proc")
    # Without a crash, an answer slower than the webhook's timeout (a busy machine) would be
    # a redelivery the test counts as a duplicate: a timeout nothing here comes near.
    timeout = 0.5 if kill_first else 10.0
    path = config(tmp_path / "gateway.toml", tenant, await receiver.start(), timeout=timeout)
    ports = [free_port(), free_port()]
    env = {"REDIS_URL": redis_url}
    processes = [start_gateway(port, env, "--config", str(path)) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        # half the contacts through each process; every visit mixes both
        events = [page(f"c{n}@x.io") for n in range(count)]
        events += [product(f"c{n}@x.io", "P1") for n in range(count)]
        await asyncio.gather(
            post_events(bases[0], tenant, events[::2]), post_events(bases[1], tenant, events[1::2])
        )
        if kill_first:
            # into the middle of detection: just as the first deadlines pass
            await asyncio.sleep(TIMEOUT)
            processes[0].kill()
        found = await each_once(bases[1], tenant, receiver, count)
        assert all(t["visit"]["events"] == 2 for t in found)  # type: ignore[index]
        delivered = [json.loads(body)["id"] for _, body, _ in receiver.requests]
        assert set(delivered) == {t["id"] for t in found}
        if not kill_first:
            assert len(delivered) == count  # no crash: no redelivery either
    finally:
        for process in processes:
            stop(process)
        await receiver.stop()


async def test_two_processes_emit_and_deliver_each_trigger_once(tmp_path, redis_url):
    await run_two(tmp_path, redis_url, kill_first=False, count=60)


async def test_a_process_killed_mid_detection_loses_no_trigger(tmp_path, redis_url):
    await run_two(tmp_path, redis_url, kill_first=True, count=200)


async def test_the_retry_schedule_survives_a_restart(tmp_path, redis_url):
    receiver = Receiver(default=500)
    tenant = unique("restart")
    path = config(tmp_path / "gateway.toml", tenant, await receiver.start(), retry_initial=1)
    port = free_port()
    env = {"REDIS_URL": redis_url}
    base = f"http://127.0.0.1:{port}"
    process = start_gateway(port, env, "--config", str(path))
    try:
        await post_events(base, tenant, [page("again@x.io")])
        await wait_for(lambda: len(receiver.requests) == 1)  # failed; next try in 0.5-1 s
        stop(process)
        receiver.default = 200
        process = start_gateway(port, env, "--config", str(path))
        await wait_for(lambda: len(receiver.requests) == 2, timeout=5)
        ids = {headers["x-gateway-id"] for headers, _, _ in receiver.requests}
        assert len(ids) == 1
    finally:
        stop(process)
        await receiver.stop()


async def test_delayed_triggers_are_emitted_once_though_a_process_is_killed(
    tmp_path, redis_url, sync_redis
):
    """Visits closed by two processes wait in Redis for their delay; one process is killed just
    as they come due, and each is still re-checked and emitted exactly once."""
    receiver = Receiver()
    tenant = unique("delayed")
    delay, count = 1.5, 200
    path = config(tmp_path / "gateway.toml", tenant, await receiver.start(), delay=delay)
    ports = [free_port(), free_port()]
    env = {"REDIS_URL": redis_url}
    processes = [start_gateway(port, env, "--config", str(path)) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    pending = TenantKeys.for_tenant(tenant).pending
    try:
        events = [page(f"d{n}@x.io") for n in range(count)]
        events += [product(f"d{n}@x.io", "P1") for n in range(count)]
        await asyncio.gather(
            post_events(bases[0], tenant, events[::2]), post_events(bases[1], tenant, events[1::2])
        )
        await wait_for(lambda: sync_redis.zcard(pending) == count, 30, f"{count} held triggers")
        assert await all_triggers(bases[1], tenant) == []  # none before its delay
        earliest = float(sync_redis.zrange(pending, 0, 0, withscores=True)[0][1]) / 1000
        await asyncio.sleep(max(0.0, earliest - time.time()))
        processes[0].kill()  # into the middle of releasing them
        found = await each_once(bases[1], tenant, receiver, count)
        for trigger in found:
            ended = datetime.fromisoformat(trigger["visit"]["endedAt"])  # type: ignore[index]
            created = datetime.fromisoformat(str(trigger["createdAt"]))
            assert (created - ended).total_seconds() >= TIMEOUT + delay
        assert sync_redis.zcard(pending) == 0
    finally:
        for process in processes:
            stop(process)
        await receiver.stop()


async def test_a_delayed_trigger_waits_out_a_restart(tmp_path, redis_url, sync_redis):
    receiver = Receiver()
    tenant = unique("restart-delayed")
    path = config(tmp_path / "gateway.toml", tenant, await receiver.start(), delay=2)
    port = free_port()
    env = {"REDIS_URL": redis_url}
    base = f"http://127.0.0.1:{port}"
    pending = TenantKeys.for_tenant(tenant).pending
    process = start_gateway(port, env, "--config", str(path))
    try:
        await post_events(base, tenant, [product("wait@x.io", "P1")])
        await wait_for(lambda: sync_redis.zcard(pending) == 1, 10, "the held trigger")
        stop(process)  # down before it is due ...
        due = float(sync_redis.zrange(pending, 0, 0, withscores=True)[0][1]) / 1000
        await asyncio.sleep(max(0.0, due - time.time()))
        process = start_gateway(port, env, "--config", str(path))  # ... and up after
        await wait_for(lambda: receiver.requests, 10, "the delayed trigger's delivery")
        (found,) = await all_triggers(base, tenant)
        assert found["type"] == "abandonedBrowse"
        assert sync_redis.zcard(pending) == 0
    finally:
        stop(process)
        await receiver.stop()
