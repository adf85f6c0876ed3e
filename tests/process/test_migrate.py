"""`gateway migrate`: data of the earlier key layout (`gw:<tenant>:…`) moves into the current one
(`gw:{<tenant>}:…`), idempotently and resumably, and `gateway serve` refuses to start on the
earlier layout until it has run (docs/operations.md, Upgrading)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway.app import create_app
from gateway.embedded.server import EmbeddedRedis
from gateway.redis.keys import KEY_ROOT, UNFOLDED_IDS, UNFOLDED_VISIT, TenantKeys
from gateway.redis.migrate import FOLDED
from gateway.redis.reads import fields_under
from gateway.settings import Settings
from tests.support.cluster import BACKENDS, LocalCluster
from tests.support.gateways import (
    ROOT,
    Api,
    build_settings,
    free_port,
    start_gateway,
    tenant_config,
    unique,
    write_config,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def to_legacy_layout(client: redis.Redis | redis.RedisCluster, tenant: str) -> dict[bytes, bytes]:
    """Rename every key of `tenant` back into the earlier layout, as a gateway before the
    migration left its data: old name -> current name."""
    current, legacy = TenantKeys.for_tenant(tenant).prefix, TenantKeys.legacy(tenant).prefix
    moved = {}
    for key in list(client.scan_iter(match=current.replace("{", "[{]") + ":*")):
        old = legacy.encode() + key[len(current) :]
        client.restore(old, max(int(client.pttl(key)), 0), client.dump(key), replace=True)
        client.delete(key)
        moved[old] = key
    return moved


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def fill(api: Any) -> None:
    """A contact with a view, a cart, an order and its trigger."""
    email = "moved@example.com"
    product = {
        "eventTypeKey": "productViewed",
        "keyValue": email,
        "params": [{"name": "product", "value": '{"productId": "P1", "price": 9}'}],
    }
    assert (await api.event(product)).status_code == 200
    order = {
        "orders": [
            {
                "externalOrderId": "O1",
                "externalCustomerId": "c1",
                "email": email,
                "status": "INITIALIZED",
                "totalCost": 9,
                "date": "2026-11-30T10:00:00",
            }
        ]
    }
    answer = await api.http.post("/v1/orders", json=order, headers=api.server())
    assert answer.json() == {"failedOrders": []}


@pytest.mark.parametrize("redis_url", BACKENDS, indirect=True)
async def test_migrate_moves_every_key_and_the_api_reads_it_back(
    make_api: Any, sync_redis: redis.Redis, tmp_path: Path, redis_url: str
) -> None:
    api, _ = await make_api()
    await fill(api)
    before = (await api.contact("moved@example.com"), (await api.get("/v1/orders/O1")).json())
    moved = to_legacy_layout(sync_redis, api.tenant_id)
    assert moved and not list(sync_redis.scan_iter(match=f"{KEY_ROOT}[{{]{api.tenant_id}}}:*"))

    # a run killed part-way leaves keys moved, keys copied but not yet deleted, and keys not moved
    pairs = list(moved.items())
    first, second = pairs[0], pairs[1]
    sync_redis.restore(first[1], 0, sync_redis.dump(first[0]), replace=True)
    sync_redis.delete(first[0])
    sync_redis.restore(second[1], 0, sync_redis.dump(second[0]), replace=True)

    done = run_migrate({"REDIS_URL": redis_url})
    assert done.returncode == 0, done.stderr
    assert f"{api.tenant_id}: {len(moved) - 1} keys moved" in done.stdout
    for old, new in moved.items():
        assert not sync_redis.exists(old)
        assert sync_redis.exists(new)
    after = (await api.contact("moved@example.com"), (await api.get("/v1/orders/O1")).json())
    assert after == before
    again = run_migrate({"REDIS_URL": redis_url})
    assert again.returncode == 0, again.stderr
    assert "0 keys moved in all" in again.stdout  # idempotent


@pytest.mark.parametrize("redis_url", BACKENDS, indirect=True)
def test_serve_refuses_the_earlier_layout_and_names_the_command(
    tmp_path: Path, sync_redis: redis.Redis, redis_url: str
) -> None:
    tenant = unique("legacy")
    stored = {"eventId": "e1", "eventTypeKey": "pageViewed", "params": {}}
    sync_redis.xadd(TenantKeys.legacy(tenant).events, {"c": "c1", "e": json.dumps(stored)})
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    log = tmp_path / "gateway.log"
    with pytest.raises(RuntimeError, match="exited"):
        start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config), log=log)
    assert "gateway migrate" in log.read_text()
    done = run_migrate({"REDIS_URL": redis_url, "GATEWAY_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config))
    try:
        key = tenant_config(tenant)["server_keys"][0]
        answer = httpx.get(
            f"http://127.0.0.1:{port}/v1/events", headers={"authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200
        assert answer.json()["events"] == [{**stored, "contactId": "c1"}]  # migrated
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


async def test_migrate_folds_identifiers_and_visits_kept_beside_the_contact_into_it(
    tmp_path: Path, sync_redis: redis.Redis, redis_url: str
) -> None:
    """Earlier gateways kept a contact's identifiers and open visit in hashes of their own
    (keys.UNFOLDED_IDS, UNFOLDED_VISIT): serve refuses them, migrate folds them into the contact's
    hash, and the visit then closes with its trigger, to the contact's email, as it would have."""
    tenant = unique("visits")
    keys = TenantKeys.for_tenant(tenant)
    config = write_config(tmp_path / "gateway.toml", [tenant], visit_timeout_seconds=30)
    port, env = free_port(), {"REDIS_URL": redis_url}
    headers = {"authorization": f"Bearer sk_{tenant}"}
    base = f"http://127.0.0.1:{port}"

    def serving() -> subprocess.Popen[bytes]:
        return start_gateway(port, env, "--config", str(config), log=tmp_path / "gateway.log")

    process = serving()
    try:
        for event in (
            {
                "eventTypeKey": "pageViewed",
                "keyValue": "ann@example.com",
                "params": [{"name": "page", "value": '{"location": "https://shop.example/"}'}],
            },
            {
                "eventTypeKey": "productViewed",
                "keyValue": "ann@example.com",
                "params": [{"name": "product", "value": '{"productId": "P1", "price": 9}'}],
            },
        ):
            assert httpx.post(f"{base}/v1/event", json=event, headers=headers).status_code == 200
        contact = httpx.get(f"{base}/v1/contacts/ann@example.com", headers=headers).json()["id"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    # the identifiers and the visit as an earlier gateway kept them, each in a hash of its own
    fields = sync_redis.hgetall(keys.contact(contact))
    for suffix, prefix in FOLDED.items():
        kept = fields_under(fields, prefix)
        assert kept
        sync_redis.hdel(keys.contact(contact), *(prefix.encode() + name for name in kept))
        sync_redis.hset(keys.contact(contact, suffix), mapping=kept)
    assert sync_redis.hget(keys.contact(contact, UNFOLDED_IDS), "email:ann@example.com")
    assert sync_redis.hget(keys.contact(contact, UNFOLDED_VISIT), "n") == b"2"

    with pytest.raises(RuntimeError, match="exited"):
        serving()
    assert "gateway migrate" in (tmp_path / "gateway.log").read_text()
    done = run_migrate({**env, "GATEWAY_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert f"{tenant}: the identifiers of 1 contacts and 1 open visits folded" in done.stdout
    assert sync_redis.hgetall(keys.contact(contact)) == fields
    assert not sync_redis.exists(*(keys.contact(contact, suffix) for suffix in FOLDED))
    again = run_migrate({**env, "GATEWAY_CONFIG": str(config)})
    assert "folded" not in again.stdout

    sync_redis.zadd(keys.visits, {contact: 0})  # due: the detector closes it at once
    process = serving()
    try:

        def emitted() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = httpx.get(f"{base}/v1/triggers", headers=headers).json()[
                "triggers"
            ]
            return found

        await wait_for(lambda: emitted() != [], what="the folded visit's trigger")
        (trigger,) = emitted()
        assert trigger["type"] == "abandonedBrowse"
        assert trigger["visit"]["events"] == 2
        assert trigger["contact"]["email"] == "ann@example.com"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


@asynccontextmanager
async def gateway_apis(settings: Settings) -> AsyncIterator[list[Api]]:
    """An in-process gateway app with `settings`: an Api for each of its tenants."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield [Api(http, app.state, t.id, f"sk_{t.id}", f"pk_{t.id}") for t in settings.tenants]


def tenants_on_every_primary(cluster: LocalCluster) -> list[str]:
    """Fresh tenant ids, one on each primary of the cluster (by the slot of their prefix)."""
    found: dict[int, str] = {}
    primaries = len(cluster.current_primaries())
    for _ in range(1000):
        tenant = unique("spread")
        found.setdefault(cluster.primary_for_key(TenantKeys.for_tenant(tenant).prefix).port, tenant)
        if len(found) == primaries:
            return list(found.values())
    raise AssertionError(f"no tenant for each of {primaries} primaries: {found}")


@pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)
async def test_migrate_on_the_cluster_gathers_each_tenant_onto_its_node(
    cluster: LocalCluster, sync_redis: redis.RedisCluster, tmp_path: Path, redis_url: str
) -> None:
    """The earlier layout spread a tenant's keys over every node (no hash tag); migrated, each
    tenant's keys are on the one primary serving its slot, tenants on all of the primaries."""
    tenants = tenants_on_every_primary(cluster)
    settings = build_settings(redis_url, tmp_path, [tenant_config(t) for t in tenants])
    async with gateway_apis(settings) as apis:  # stopped before its keys are renamed under it
        for api in apis:
            await fill(api)
        before = [await api.contact("moved@example.com") for api in apis]
    moved = {t: to_legacy_layout(sync_redis, t) for t in tenants}
    legacy_homes = {
        cluster.primary_for_key(old.decode()).port for keys in moved.values() for old in keys
    }
    assert len(legacy_homes) == 3  # the earlier layout: every tenant's keys on every node

    done = run_migrate({"REDIS_URL": redis_url, "GATEWAY_CONFIG": ""})
    assert done.returncode == 0, done.stderr
    for tenant, keys in moved.items():
        news = list(keys.values())
        assert f"{tenant}: {len(news)} keys moved" in done.stdout
        home = cluster.primary_for_key(TenantKeys.for_tenant(tenant).prefix)
        with home.client() as direct:  # all on the primary serving the tenant's slot
            assert direct.exists(*news) == len(news)
        assert sync_redis.exists(*keys) == 0  # the old names are gone
    async with gateway_apis(settings) as apis:  # (its detector drains the :tally it finds)
        for api, contact in zip(apis, before, strict=True):
            assert await api.contact("moved@example.com") == contact
            assert (await api.get("/v1/orders/O1")).json()["externalOrderId"] == "O1"
    again = run_migrate({"REDIS_URL": redis_url, "GATEWAY_CONFIG": ""})
    assert "0 keys moved in all" in again.stdout


def test_migrate_works_on_the_embedded_redis(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tenant = unique("embedded")
    legacy, current = TenantKeys.legacy(tenant), TenantKeys.for_tenant(tenant)
    server = EmbeddedRedis(data_dir)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        client.xadd(legacy.events, {"e": "{}"})
        client.set(legacy.identifier("email", "a@b.c"), "c1", ex=3600)
        client.close()
    finally:
        server.stop()
    done = run_migrate({"GATEWAY_DATA_DIR": str(data_dir), "REDIS_URL": ""})
    assert done.returncode == 0, done.stderr
    assert f"{tenant}: 2 keys moved" in done.stdout
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.xlen(current.events) == 1
        assert 0 < client.ttl(current.identifier("email", "a@b.c")) <= 3600
        assert not client.exists(legacy.events)
        client.close()
    finally:
        server.stop()
