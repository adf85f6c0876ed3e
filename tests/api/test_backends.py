"""Where a tenant's data lives (docs/operations.md, Redis Cluster; SPEC §10-§11): every key of a
tenant in the slot of its hash tag `{<tenant>}`, on either backend, and on the cluster tenants
spread over the primaries, each served wholly by one of them."""

from __future__ import annotations

import pytest
import redis
from redis.crc import key_slot

from tests.support.cluster import LocalCluster
from tests.support.gateways import Api
from tests.support.orders import cart_event, order, post_orders
from tests.support.triggering import page, product, send


async def fill(api: Api) -> None:
    """A contact with views, a cart and an order."""
    await send(api, page("ann@example.com"), product("ann@example.com", "P1"))
    assert (await api.event(cart_event("rs-1", "ann@example.com"))).status_code == 200
    await post_orders(api, order("o-1", email="ann@example.com"))


def stored_keys(sync_redis: redis.Redis | redis.RedisCluster, api: Api) -> list[bytes]:
    pattern = api.keys.prefix.replace("{", "[{]") + ":*"
    return list(sync_redis.scan_iter(match=pattern, count=1000))


async def test_every_key_of_a_tenant_is_in_the_slot_of_its_hash_tag(make_api, sync_redis):
    a, b = await make_api()
    await fill(a)
    keys = stored_keys(sync_redis, a)
    assert len(keys) >= 8  # events, contact and its parts, cart, order and its parts, triggers
    assert {key_slot(k) for k in keys} == {key_slot(a.tenant_id.encode())}
    assert stored_keys(sync_redis, b) == []


@pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)
async def test_tenants_spread_over_the_primaries_each_served_by_one(
    make_api, sync_redis, cluster: LocalCluster
):
    apis = [api for _ in range(6) for api in await make_api()]  # 12 tenants
    homes = {}
    for api in apis:
        await fill(api)
        home = cluster.primary_for_key(api.keys.events)
        homes[api.tenant_id] = home.port
        with home.client() as direct:  # each key of the tenant is on that primary itself
            keys = stored_keys(sync_redis, api)
            assert direct.exists(*keys) == len(keys)
        contact = await api.contact("ann@example.com")  # and reads back through the gateway
        assert contact["identifiers"]["email"] == ["ann@example.com"]
        assert (await api.get("/v1/orders/o-1")).json()["externalOrderId"] == "o-1"
    assert len(set(homes.values())) >= 2, homes  # 12 random tenants on one of 3 primaries: 1e-5
