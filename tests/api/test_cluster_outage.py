"""A Redis Cluster slot nobody serves (SPEC §11): only the tenant on it is refused, with 503 +
Retry-After on its writes and reads, and /readyz says so; the other tenants go on. Once the slot
is served again the same gateway serves the tenant again, without a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from tests.support.cluster import LocalCluster
from tests.support.gateways import Api
from tests.support.orders import order
from tests.support.triggering import page
from tests.support.waiting import wait_for

pytestmark = pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)

READS = ("/v1/contacts/ann@example.com", "/v1/events", "/v1/triggers", "/v1/orders/o-1")


def slot(api: Api) -> int:
    return key_slot(api.keys.prefix.encode())


@pytest.fixture
def uncovered(cluster: LocalCluster) -> Iterator[list[int]]:
    """Slots to take away for the test (`uncovered.append(slot)`), served again at its end."""
    slots: list[int] = []
    yield slots
    for taken in slots:
        if taken in cluster.uncovered:
            cluster.cover_slot(taken, cluster.current_primaries()[0])


async def take_away(cluster: LocalCluster, uncovered: list[int], api: Api) -> None:
    """Serve no longer the slot of `api`'s tenant, once the gateway has served it."""
    assert (await api.event(page("ann@example.com", eventId="before"))).status_code == 200
    uncovered.append(slot(api))
    cluster.uncover_slot(slot(api))


@pytest.mark.both_transports
async def test_an_unserved_slot_refuses_only_its_tenant(
    make_api, cluster: LocalCluster, uncovered: list[int]
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


async def test_a_slot_served_again_is_served_by_the_same_gateway(
    make_api, cluster: LocalCluster, uncovered: list[int]
):
    down, _ = await make_api()
    owner = cluster.primary_for_key(down.keys.events)
    await take_away(cluster, uncovered, down)
    refused = await down.event(page("ann@example.com", eventId="during"))
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert (await down.get("/v1/events")).status_code == 503  # CLUSTERDOWN: the map is reloaded
    assert (await down.get("/readyz")).status_code == 503  # ... here, without the slot

    cluster.cover_slot(slot(down), owner)

    async def served_again() -> bool:
        return (await down.get("/readyz")).status_code == 200

    await wait_for(served_again, 5, "/readyz to be 200 again")
    after = await down.event(page("ann@example.com", eventId="after"))
    assert after.json() == {"status": "accepted", "eventId": "after"}
    stored = (await down.get("/v1/events")).json()["events"]
    assert [e["eventId"] for e in stored] == ["after", "before"]  # none of the 503s
