"""The gateway process dies or is told to stop under load (docs/operations.md, Durability, and
Probes, logs and shutdown).

SIGKILL: whatever was acknowledged is in Redis, because a 200 is only sent after Redis stored the
events; a restarted gateway carries on. SIGTERM: requests already in flight are answered, then the
process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.faults import Load, page_view, stored_event_ids
from tests.support.gateways import free_port, start_gateway, unique, write_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


async def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path, redis_url):
    tenant = unique("kill")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    env = {"REDIS_URL": redis_url}
    gateway = start_gateway(port, env, "--config", str(config))
    load = Load(f"http://127.0.0.1:{port}", f"sk_{tenant}", tenant)
    tally = load.tally
    try:
        await wait_for(lambda: len(tally.acknowledged) >= 1000, 30, "load before the kill")
        # One process (no --workers) serves everything, so this kills it mid-request.
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        killed_at = len(tally.acknowledged)
        await wait_for(lambda: tally.statuses["no answer"] >= 5, 10, "refused connections")
        gateway = start_gateway(port, env, "--config", str(config))
        await wait_for(lambda: len(tally.acknowledged) >= killed_at + 1000, 30, "load after")
        await load.finish()
    finally:
        load.abandon()
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(20)
    found = stored_event_ids(redis_url, tenant)
    acknowledged = set(tally.acknowledged)
    print(f"\ngateway SIGKILL: {tally.figures(len(acknowledged & found))}")
    assert code == 0
    assert not tally.failures, tally.failures[:5]
    assert acknowledged <= found, f"lost {len(acknowledged - found)} acknowledged events"
    assert set(tally.statuses) <= {"200", "no answer"}


async def test_sigterm_answers_in_flight_requests_then_exits_0(tmp_path, redis_url):
    """Bodies still arriving when SIGTERM lands are read, stored and answered."""
    tenant = unique("term")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    gateway = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config))
    signalled = asyncio.Event()
    in_flight = 5
    batch = 200

    def body(n: int) -> bytes:
        return orjson.dumps([page_view(f"{tenant}-{n}-{i}", f"{tenant}-{n}") for i in range(batch)])

    async def slow_body(n: int) -> AsyncIterator[bytes]:
        data = body(n)
        yield data[: len(data) // 2]
        await signalled.wait()
        await asyncio.sleep(0.5)  # the server is shutting down while this half is on its way
        yield data[len(data) // 2 :]

    headers = {"authorization": f"Bearer sk_{tenant}", "content-type": "application/json"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            requests = [
                asyncio.create_task(http.post("/v1/events", content=slow_body(n), headers=headers))
                for n in range(in_flight)
            ]
            await asyncio.sleep(0.5)  # every request has sent its headers and half its body
            gateway.send_signal(signal.SIGTERM)
            signalled.set()
            answers = await asyncio.gather(*requests)
    finally:
        if not signalled.is_set():  # a second SIGTERM would cut the orderly shutdown short
            gateway.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(gateway.wait, 20)
    found = len(stored_event_ids(redis_url, tenant))
    statuses = [a.status_code for a in answers]
    print(
        f"\ngateway SIGTERM with {in_flight} requests in flight: sent={in_flight * batch} "
        f"answers={statuses} found={found} lost={in_flight * batch - found} exit={code}"
    )
    assert statuses == [200] * in_flight
    assert all(a.json()["accepted"] == batch for a in answers)
    assert found == in_flight * batch
    assert code == 0


def embedded_servers(data: Path) -> list[str]:
    """Pids of redis-server processes serving this data dir's socket."""
    found = subprocess.run(
        ["pgrep", "-f", str(data / "redis.sock")], capture_output=True, text=True
    )
    return found.stdout.split()


async def test_sigkill_with_embedded_redis_restarts_on_one_server(tmp_path):
    """The embedded Redis outlives a SIGKILLed gateway; the restarted gateway must not start a
    second server on the same data dir (two servers appending one AOF), and loses nothing."""
    tenant = unique("embedded")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    data = tmp_path / "data"
    env = {"REDIS_URL": "", "GATEWAY_DATA_DIR": str(data), "GATEWAY_CONFIG": str(config)}
    port = free_port()
    gateway = start_gateway(port, env)
    load = Load(f"http://127.0.0.1:{port}", f"sk_{tenant}", tenant)
    tally = load.tally
    try:
        await wait_for(lambda: len(tally.acknowledged) >= 500, 30, "load before the kill")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        orphans = embedded_servers(data)
        gateway = start_gateway(port, env)
        servers = embedded_servers(data)
        killed_at = len(tally.acknowledged)
        await wait_for(lambda: len(tally.acknowledged) >= killed_at + 500, 30, "load after")
        await load.finish()
        found = stored_event_ids(f"unix://{data / 'redis.sock'}", tenant)
    finally:
        load.abandon()
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(20)
        for pid in embedded_servers(data):  # only if the test failed half-way
            subprocess.run(["kill", pid], check=False)
    acknowledged = set(tally.acknowledged)
    print(
        f"\nembedded redis after gateway SIGKILL: orphaned servers {len(orphans)}, after restart "
        f"{len(servers)}; {tally.figures(len(acknowledged & found))}"
    )
    assert len(orphans) == 1 and len(servers) == 1 and servers != orphans
    assert acknowledged <= found
    assert not tally.failures, tally.failures[:5]
    assert code == 0


def children(pid: int, command: str | None = None) -> list[int]:
    """Pids of the child processes of `pid` (those whose command line holds `command`)."""
    pattern = ["-f", command] if command else []
    found = subprocess.run(["pgrep", "-P", str(pid), *pattern], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped by init) counts as gone.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return bool(state.stdout.strip()) and not state.stdout.strip().startswith("Z")


async def test_sigkill_of_the_supervisor_ends_its_workers(tmp_path, redis_url):
    """`--workers 2`: SIGKILL of the supervisor leaves workers holding the port unless they notice
    and stop; then a restarted gateway binds the same port, and nothing acknowledged is lost."""
    tenant = unique("workers")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    env = {"REDIS_URL": redis_url}
    gateway = start_gateway(port, env, "--config", str(config), "--workers", "2")
    load = Load(f"http://127.0.0.1:{port}", f"sk_{tenant}", tenant)
    tally = load.tally
    workers = children(gateway.pid)  # the two workers, and multiprocessing's resource tracker
    try:
        # what the kill is to end (else the wait for them to end would pass on nothing)
        spawned = children(gateway.pid, "multiprocessing.spawn")
        assert len(spawned) == 2 and set(spawned) <= set(workers), (spawned, workers)
        await wait_for(lambda: len(tally.acknowledged) >= 500, 30, "load before the kill")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        started = time.monotonic()
        await wait_for(lambda: not any(alive(w) for w in workers), 10, "orphaned workers to end")
        ended = time.monotonic() - started
        gateway = start_gateway(port, env, "--config", str(config), "--workers", "2")
        killed_at = len(tally.acknowledged)
        await wait_for(lambda: len(tally.acknowledged) >= killed_at + 500, 30, "load after")
        await load.finish()
    finally:
        load.abandon()
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(20)
        for pid in workers:  # only if they outlived the test's wait: leave no orphans behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    found = stored_event_ids(redis_url, tenant)
    acknowledged = set(tally.acknowledged)
    print(
        f"\n--workers 2, supervisor SIGKILL: {len(workers)} children ended {ended:.1f}s later; "
        f"{tally.figures(len(acknowledged & found))}"
    )
    assert code == 0
    assert acknowledged <= found
    assert not tally.failures, tally.failures[:5]
