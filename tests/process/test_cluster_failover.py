"""A primary of a real Redis Cluster SIGKILLed under load, a real `gateway serve` in front
(SPEC §11): with `replicas_to_ack = 1` no event answered 200 is lost, every answer is 200 or
503 + Retry-After, the other primaries' tenants go on, and the same gateway process serves the
failed-over tenant again once the cluster does.

With one replica per primary, the promoted replica has no replica of its own until the killed
node is back (`cluster.restart`: it rejoins as the new primary's replica), so in between `WAIT 1`
confirms nothing and the tenant's writes are 503: never a 200 that one more crash could lose.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.redis.keys import TenantKeys
from tests.support.cluster import LocalCluster, Node, sync_client
from tests.support.gateways import (
    build_settings,
    free_port,
    start_gateway,
    stop_gateway,
    tenant_config,
    unique,
)
from tests.support.triggering import page, product
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

WORKERS = 4  # concurrent clients posting events
MAX_REQUESTS = 20_000  # bounds of the load, whatever happens
MAX_SECONDS = 60.0
STEADY = 1.5  # seconds of load before the kill and after the failed-over tenant is back
RECOVERY = 10.0  # from the killed node's return to the tenant's first 200
VISIT_TIMEOUT = 3.0  # the trigger tenant's visits close after the failover has begun
VISITORS = 20
# The other tenants' requests answered 200 during the failover: all of them in every run measured
# since the batcher sends a pipeline per node (93-99% before, when one node refusing connections
# failed the whole cluster pipeline). A little room for a reply cut by the client's own re-read
# of the slot map.
BYSTANDERS_OK = 0.98


@dataclass
class Answer:
    tenant: str
    event_id: str
    sent: float
    at: float
    status: int
    retry_after: str | None


@dataclass
class Load:
    base: str
    tenants: list[str]
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # no HTTP answer at all
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        ids = itertools.count()
        deadline = time.monotonic() + MAX_SECONDS
        async with httpx.AsyncClient(base_url=self.base, timeout=15) as http:

            async def worker() -> None:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    n = next(ids)
                    if n >= MAX_REQUESTS:
                        return
                    tenant = self.tenants[n % len(self.tenants)]
                    event_id = f"{tenant}-{n}"
                    body = {
                        "eventTypeKey": "pageViewed",
                        "keyValue": f"c{n % 50}@x.io",
                        "eventId": event_id,
                        "params": [{"name": "page", "value": '{"location":"https://x.io/"}'}],
                    }
                    auth = {"authorization": f"Bearer sk_{tenant}"}
                    sent = time.monotonic()
                    try:
                        response = await http.post("/v1/event", json=body, headers=auth)
                    except httpx.HTTPError as error:
                        self.errors.append(f"{event_id}: {error!r}")
                        continue
                    self.answers.append(
                        Answer(
                            tenant,
                            event_id,
                            sent,
                            time.monotonic(),
                            response.status_code,
                            response.headers.get("retry-after"),
                        )
                    )
                    await asyncio.sleep(0.002)

            await asyncio.gather(*(worker() for _ in range(WORKERS)))

    def of(self, tenant: str, since: float = 0.0, until: float = float("inf")) -> list[Answer]:
        return [a for a in self.answers if a.tenant == tenant and since <= a.sent and a.at <= until]


async def poll_ready(base: str, stop: asyncio.Event, seen: list[tuple[float, int]]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        while not stop.is_set():
            status = (await http.get("/readyz")).status_code
            seen.append((time.monotonic(), status))  # when the answer came
            await asyncio.sleep(0.1)


def tenant_on(cluster: LocalCluster, primary: Node, name: str) -> str:
    for _ in range(1000):
        tenant = unique(name)
        if cluster.primary_for_key(TenantKeys.for_tenant(tenant).prefix) is primary:
            return tenant
    raise AssertionError(f"no tenant id on {primary}")


def write_config(path: Path, tenants: list[str], trigger_tenant: str) -> Path:
    lines = ["[gateway]", "replicas_to_ack = 1", "replica_ack_timeout_ms = 200"]
    for tenant in [*tenants, trigger_tenant]:
        lines += ["[[tenants]]", f'id = "{tenant}"', f'server_keys = ["sk_{tenant}"]']
        if tenant == trigger_tenant:
            lines.append(f"visit_timeout_seconds = {VISIT_TIMEOUT}")
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_event_ids(url: str, tenant: str) -> set[str]:
    client = sync_client(url)
    try:
        rows = client.xrange(TenantKeys.for_tenant(tenant).events)
    finally:
        client.close()
    return {orjson.loads(fields[b"e"])["eventId"] for _, fields in rows}


async def test_a_primary_killed_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", node_timeout_ms=1000) as cluster:
        killed, *others = cluster.current_primaries()
        victim = tenant_on(cluster, killed, "victim")
        bystanders = [tenant_on(cluster, node, "other") for node in others]
        trigger_tenant = tenant_on(cluster, killed, "trig")  # its visits close in the failover
        config = write_config(tmp_path / "gateway.toml", [victim, *bystanders], trigger_tenant)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"REDIS_URL": cluster.url, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
        gateway = start_gateway(port, env, "--config", str(config), log=tmp_path / "gw.log")
        load = Load(base, [victim, *bystanders])
        ready: list[tuple[float, int]] = []
        running = asyncio.gather(load.run(), poll_ready(base, load.stop, ready))
        try:
            await asyncio.sleep(STEADY)
            visits = [product(f"v{n}@x.io", "P1") for n in range(VISITORS)]
            async with httpx.AsyncClient(base_url=base) as http:
                auth = {"authorization": f"Bearer sk_{trigger_tenant}"}
                opened = await http.post("/v1/events", json=visits, headers=auth)
                assert opened.json()["accepted"] == VISITORS, opened.text

            kill_started = time.monotonic()  # a probe answered before this never met the kill
            await asyncio.to_thread(cluster.kill, killed)
            killed_at = time.monotonic()  # requests sent from now on cannot reach it
            promoted = await asyncio.to_thread(cluster.wait_promoted, killed)
            promoted_at = time.monotonic()
            assert promoted.port != killed.port
            back_from = time.monotonic()
            await asyncio.to_thread(cluster.restart, killed)  # now the promoted one's replica
            back_at = time.monotonic()
            assert cluster.replicas_of(promoted) == [killed]

            def served_again() -> bool:
                return any(a.status == 200 for a in load.of(victim, since=back_at))

            await wait_for(served_again, RECOVERY, f"a 200 for {victim} after the failover")
            recovered_at = min(a.at for a in load.of(victim, since=back_at) if a.status == 200)
            await asyncio.sleep(STEADY)
            load.stop.set()
            await running

            # Every answer a 200 or a 503 that says when to retry; no request went unanswered.
            assert load.errors == []
            statuses = {a.status for a in load.answers}
            assert statuses <= {200, 503}, statuses
            assert all(a.retry_after == "1" for a in load.answers if a.status == 503)
            # No write of the failed-over tenant answered 200 while its slot had no replica.
            alone = load.of(victim, since=killed_at, until=back_from)
            assert alone and {a.status for a in alone} == {503}
            # The other primaries' tenants went on meanwhile: mostly 200s.
            during = [
                a for t in bystanders for a in load.of(t, since=killed_at, until=recovered_at)
            ]
            ok = sum(a.status == 200 for a in during)
            assert ok >= BYSTANDERS_OK * len(during) and ok > 100, (ok, len(during))
            # Served again well within the bound, and after that nothing but 200s.
            assert recovered_at - back_at < RECOVERY
            after = [a for t in load.tenants for a in load.of(t, since=recovered_at + 0.5)]
            assert after and {a.status for a in after} == {200}

            # lost = 0: every event answered 200 is in its tenant's stream.
            lost = 0
            for tenant in load.tenants:
                stored = stored_event_ids(cluster.url, tenant)
                acknowledged = {a.event_id for a in load.of(tenant) if a.status == 200}
                lost += len(acknowledged - stored)
            assert lost == 0

            # /readyz: 503 while the slot had no node, 200 again from the promotion on.
            assert [s for t, s in ready if t < kill_started] and all(
                s == 200 for t, s in ready if t < kill_started
            )
            assert 503 in {s for t, s in ready if killed_at <= t <= promoted_at}
            assert all(s == 200 for t, s in ready if t > promoted_at + 1.0)

            # Each visit of the trigger tenant closed across the failover: one trigger each.
            async with httpx.AsyncClient(base_url=base, headers=auth) as http:

                async def triggers() -> list[dict[str, object]]:
                    page = await http.get("/v1/triggers", params={"limit": 1000})
                    found: list[dict[str, object]] = page.json()["triggers"]
                    return found

                async def all_closed() -> bool:
                    return len(await triggers()) >= VISITORS

                await wait_for(all_closed, 15, f"{VISITORS} triggers")
                await asyncio.sleep(2 * VISIT_TIMEOUT)  # time for a duplicate to show
                found = await triggers()
            emails = sorted(t["contact"]["email"] for t in found)  # type: ignore[index]
            assert emails == sorted(f"v{n}@x.io" for n in range(VISITORS))
            assert {t["type"] for t in found} == {"abandonedBrowse"}

            print(
                f"\nfailover: {len(load.answers)} requests, "
                f"{sum(a.status == 200 for a in load.answers)} x 200, "
                f"{sum(a.status == 503 for a in load.answers)} x 503; "
                f"promoted {promoted_at - killed_at:.1f}s after the kill, node back "
                f"{back_at - promoted_at:.1f}s later, tenant served {recovered_at - back_at:.2f}s "
                f"after that; others during: {ok}/{len(during)} x 200; lost {lost}"
            )
        finally:
            load.stop.set()
            await asyncio.gather(running, return_exceptions=True)
            assert stop_gateway(gateway) == 0


async def test_a_dead_primary_fails_only_its_tenants(tmp_path: Path) -> None:
    """Before any failover (a node timeout longer than the test), a primary is down: its
    tenant's events are 503, events of a tenant on another primary sent at the same time 200."""
    with LocalCluster(tmp_path / "cluster", node_timeout_ms=60_000) as cluster:
        dead, alive, _ = cluster.current_primaries()
        victim, bystander = tenant_on(cluster, dead, "victim"), tenant_on(cluster, alive, "other")
        tenants = [tenant_config(victim), tenant_config(bystander)]
        app = create_app(build_settings(cluster.url, tmp_path, tenants))
        transport = httpx.ASGITransport(app=app)
        async with (
            app.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
        ):

            async def post(tenant: str, n: int) -> int:
                body = page(f"c{n}@x.io", eventId=f"{tenant}-{n}")
                auth = {"authorization": f"Bearer sk_{tenant}"}
                return (await http.post("/v1/event", json=body, headers=auth)).status_code

            assert {await post(t, 0) for t in (victim, bystander)} == {200}
            cluster.kill(dead)
            for first in (1, 11, 21):  # both tenants' events, concurrent: in shared batches
                victims = asyncio.gather(*(post(victim, n) for n in range(first, first + 10)))
                others = asyncio.gather(*(post(bystander, n) for n in range(first, first + 10)))
                refused, served = await asyncio.gather(victims, others)
                assert set(refused) == {503}
                assert set(served) == {200}, served
