"""A Redis Cluster slot nobody serves (SPEC §11): only the tenant on it is refused, with 503 +
Retry-After on its writes and reads, and /readyz says so; the other tenants go on. Once the slot
is served again the same gateway serves the tenant again, without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
from redis.crc import key_slot

from tests.support.cluster import LocalCluster, Node
from tests.support.gateways import Api
from tests.support.orders import order
from tests.support.triggering import TIMEOUT, Receiver, closed, page, product
from tests.support.waiting import wait_for

pytestmark = pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)

READS = ("/v1/contacts/ann@example.com", "/v1/events", "/v1/triggers", "/v1/orders/o-1")


def slot(api: Api) -> int:
    return key_slot(api.keys.prefix.encode())


@pytest.fixture
def uncovered(cluster: LocalCluster) -> Iterator[dict[int, Node]]:
    """The slots the test took away (take_away), each served by its owner again at the end."""
    slots: dict[int, Node] = {}
    yield slots
    for taken, owner in slots.items():
        if taken in cluster.uncovered:
            cluster.cover_slot(taken, owner)


async def take_away(cluster: LocalCluster, uncovered: dict[int, Node], api: Api) -> Node:
    """Serve no longer the slot of `api`'s tenant, once the gateway has served it; its owner."""
    assert (await api.event(page("ann@example.com", eventId="before"))).status_code == 200
    uncovered[slot(api)] = cluster.uncover_slot(slot(api))
    return uncovered[slot(api)]


@pytest.mark.both_transports
async def test_an_unserved_slot_refuses_only_its_tenant(
    make_api, cluster: LocalCluster, uncovered: dict[int, Node]
):
    down, up = await make_api()
    assert slot(down) != slot(up)
    assert (await up.event(page("ann@example.com", eventId="before"))).status_code == 200
    assert (await down.get("/readyz")).status_code == 200
    await take_away(cluster, uncovered, down)

    for n in range(3):  # the first and the later ones alike (the client drops the slot's map)
        refused = await down.event(page("ann@example.com", eventId=f"during-{n}"))
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
        assert refused.json()["error"] == "redis_unavailable"
        served = await up.event(page("ann@example.com", eventId=f"during-{n}"))
        assert served.json() == {"status": "accepted", "eventId": f"during-{n}"}
    batch = await down.events([page("ann@example.com", eventId="batch")])
    assert (batch.status_code, batch.headers["retry-after"]) == (503, "1")
    orders = await down.http.post(
        "/v1/orders", json={"orders": [order("o-1")]}, headers=down.server()
    )
    assert (orders.status_code, orders.headers["retry-after"]) == (503, "1")
    for path in READS:
        read = await down.get(path)
        assert (read.status_code, read.headers["retry-after"]) == (503, "1"), path
        assert (await up.get(path)).status_code in (200, 404), path  # 404: no order o-1 at up
    assert [e["eventId"] for e in (await up.get("/v1/events")).json()["events"]] == [
        "during-2",
        "during-1",
        "during-0",
        "before",
    ]
    ready = await down.get("/readyz")
    assert (ready.status_code, ready.headers["retry-after"]) == (503, "1")
    assert (await down.get("/healthz")).status_code == 200


@pytest.mark.parametrize("probe", ["readyz", "event", "order"])
async def test_a_slot_served_again_is_served_by_the_same_gateway(
    make_api, cluster: LocalCluster, uncovered: dict[int, Node], probe: str
):
    """Whatever the tenant's client sends (here nothing but `probe`), it is served again."""
    down, _ = await make_api()
    owner = await take_away(cluster, uncovered, down)
    refused = await down.event(page("ann@example.com", eventId="during"))
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert (await down.get("/v1/events")).status_code == 503  # CLUSTERDOWN: the map is reloaded
    assert (await down.get("/readyz")).status_code == 503  # ... here, without the slot

    cluster.cover_slot(slot(down), owner)
    tries = iter(range(1000))

    async def served_again() -> bool:
        if probe == "readyz":
            return (await down.get("/readyz")).status_code == 200
        if probe == "event":
            body = page("ann@example.com", eventId=f"probe-{next(tries)}")
            return (await down.event(body)).status_code == 200
        orders = {"orders": [order(f"o-{next(tries)}")]}
        answer = await down.http.post("/v1/orders", json=orders, headers=down.server())
        return answer.status_code == 200

    await wait_for(served_again, 5, f"{probe} to be served again")
    after = await down.event(page("ann@example.com", eventId="after"))
    assert after.json() == {"status": "accepted", "eventId": "after"}
    stored = {e["eventId"] for e in (await down.get("/v1/events")).json()["events"]}
    assert {"before", "after"} <= stored and "during" not in stored  # none of the 503s
    assert (await down.get("/readyz")).status_code == 200


async def test_an_unserved_slot_stops_no_other_tenants_triggers(
    make_api, cluster: LocalCluster, uncovered: dict[int, Node]
):
    down, up = await make_api(visit_timeout_seconds=TIMEOUT)  # the detector sees down first
    await take_away(cluster, uncovered, down)
    # Retried as a client does on a 503: when a node first answers CLUSTERDOWN, redis-py closes
    # every connection, so a request of the up tenant in flight then may get one (operations.md).
    for _ in range(10):
        answer = await up.events([product("bob@example.com", "P1", eventId="bob-1")])
        if answer.status_code != 503:
            break
        await asyncio.sleep(0.2)
    assert answer.status_code == 200 and not answer.json()["failed"], answer.text
    (trigger,) = await closed(up, 1)
    assert trigger["type"] == "abandonedBrowse"
    assert trigger["contact"]["email"] == "bob@example.com"


async def test_an_unserved_slot_holds_back_no_other_tenants_webhooks(
    make_api, cluster: LocalCluster, uncovered: dict[int, Node], receiver: Receiver
):
    hook = {"url": receiver.url, "secret": "whsec_cluster_outage"}
    down, up = await make_api(webhooks=[hook])  # the webhook loop polls down's hook first
    await take_away(cluster, uncovered, down)
    await asyncio.sleep(0.5)  # the pass under way when the slot went is over
    # An orderINITIALIZED trigger, emitted on the spot; retried as a client does on a 503 (the
    # client closes every connection when a node answers CLUSTERDOWN, the up tenant's too).
    for _ in range(10):
        answer = await up.http.post(
            "/v1/orders", json={"orders": [order("o-1")]}, headers=up.server()
        )
        if answer.status_code != 503:
            break
        await asyncio.sleep(0.2)
    assert answer.json() == {"failedOrders": []}
    await wait_for(lambda: len(receiver.requests) >= 1, 10, "the webhook of the served tenant")
    _, body, _ = receiver.requests[0]
    assert orjson.loads(body)["type"] == "orderINITIALIZED"
