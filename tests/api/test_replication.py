"""`[gateway] replicas_to_ack` (SPEC §11; docs/configuration.md): a write is answered 200 only once
that many replicas confirmed it (WAIT), else 503 + Retry-After; the client retries with the same
eventId, which the gateway stores once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import LocalCluster
from tests.support.orders import order
from tests.support.triggering import page

ACK = {"replicas_to_ack": 1, "replica_ack_timeout_ms": 50}


def view(event_id: str) -> dict[str, Any]:
    return page("ann@example.com", eventId=event_id)


def assert_unconfirmed(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "redis_unavailable"


@pytest.mark.both_transports
@pytest.mark.parametrize("redis_url", ["single"], indirect=True)
async def test_a_server_without_replicas_confirms_no_write(make_api):
    """The suite's single Redis has no replica: WAIT 1 counts none within 50 ms."""
    api, _ = await make_api(gateway=ACK)
    for _ in range(3):  # the client's retries, same eventId: never a 200
        assert_unconfirmed(await api.event(view("e-1")))
    assert_unconfirmed(await api.event(view("e-2"), site=True))  # the tracker's way in
    assert_unconfirmed(await api.events([view("e-3"), view("e-4")]))
    orders = await api.http.post(
        "/v1/orders", json={"orders": [order("o-1")]}, headers=api.server()
    )
    assert_unconfirmed(orders)
    # Reads are not writes: they answer. What the unconfirmed writes left is stored at most once.
    events = await api.get("/v1/events")
    assert events.status_code == 200
    ids = [e["eventId"] for e in events.json()["events"]]
    assert sorted(ids) == sorted(set(ids)) and set(ids) <= {"e-1", "e-2", "e-3", "e-4"}
    assert (await api.get("/readyz")).status_code == 200  # Redis itself answers


@pytest.mark.both_transports
@pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)
async def test_on_the_cluster_each_write_is_on_the_replica_when_answered(
    make_api, cluster: LocalCluster
):
    api, _ = await make_api(gateway=ACK)
    primary = cluster.primary_for_key(api.keys.events)
    [replica] = cluster.replicas_of(primary)
    with replica.client() as direct:
        direct.execute_command("READONLY")  # a replica answers reads of its primary's slots
        for n in range(1, 4):
            response = await api.event(view(f"e-{n}"))
            assert response.json() == {"status": "accepted", "eventId": f"e-{n}"}
            assert direct.xlen(api.keys.events) == n  # there the moment the 200 came
        assert (await api.event(view("e-1"))).json()["status"] == "duplicate"
        batch = await api.events([view("e-4"), view("e-5")])
        assert batch.status_code == 200 and not batch.json()["failed"]
        assert direct.xlen(api.keys.events) == 5
        orders = await api.http.post(
            "/v1/orders", json={"orders": [order("o-1")]}, headers=api.server()
        )
        assert orders.json() == {"failedOrders": []}
        assert direct.exists(api.keys.order("o-1"))
