"""Order events on /v1/event and /v1/events with the semantics of seed 001.

The contract: docs/api.md, Order events.
"""

from __future__ import annotations

import orjson
import pytest

from tests.support.orders import event, order, post_orders, triggers
from tests.support.seeds import json_blocks, seed_text


def seed_order_event(prefix: str) -> str:
    (body,) = json_blocks(seed_text(prefix), '"orderCreated"')
    return body


def created(external_id: str = "o-1", key_value: str | None = "buyer@example.com", **params):
    base = {
        "externalOrderId": external_id,
        "totalCost": "258.0",
        "status": "INITIALIZED",
        "date": "2020-05-14T10:11:00",
    }
    return event("orderCreated", key_value, **{**base, **params})


async def test_seed_001_order_created_as_printed(api, sync_redis):
    body = seed_order_event("001")
    response = await api.http.post("/v1/event", content=body.encode(), headers=api.server())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    stored = (await api.get("/v1/orders/12345679")).json()
    assert stored["status"] == "INITIALIZED"
    assert stored["order"]["totalCost"] == 258.0
    assert stored["order"]["currency"] == "UAH"
    assert stored["order"]["items"][0]["externalItemId"] == "200600"
    contact = await api.contact("AV13760")
    assert contact["id"] == stored["contactId"] == (await api.contact("380501234567"))["id"]
    assert contact["identifiers"]["externalCustomerId"] == ["AV13760"]
    (raw,) = (await api.get("/v1/events?contact=AV13760")).json()["events"]
    assert raw["eventTypeKey"] == "orderCreated"  # the event is stored like any other
    (trigger,) = triggers(sync_redis, api)
    assert (trigger["type"], trigger["externalOrderId"], trigger["phone"]) == (
        "orderINITIALIZED",
        "12345679",
        "380501234567",
    )
    assert trigger["email"] is None


async def test_seed_004_order_created_with_items_as_a_json_string(api):
    body = seed_order_event("004")
    response = await api.http.post("/v1/event", content=body.encode(), headers=api.server())
    assert response.json()["status"] == "accepted", response.text
    (item,) = (await api.get("/v1/orders/12345679")).json()["order"]["items"]
    assert item["url"] == "http://example.com/item/200600"
    assert item["cost"] == 990


@pytest.mark.both_transports
async def test_order_created_without_a_required_param_is_ignored_with_a_reason(api, sync_redis):
    for missing in ("externalOrderId", "totalCost", "status", "date"):
        body = created("o-1")
        body["params"] = [p for p in body["params"] if p["name"] != missing]
        response = await api.event(body)
        assert response.status_code == 200
        answer = response.json()
        assert answer["status"] == "ignored"
        assert missing in answer["reason"]
    nobody = created("o-1", key_value="not-an-email-or-phone")
    answer = (await api.event(nobody)).json()
    assert answer["status"] == "ignored"
    assert "externalCustomerId, email or phone" in answer["reason"]
    assert (await api.get("/v1/orders/o-1")).status_code == 404
    assert triggers(sync_redis, api) == []
    stored = (await api.get("/v1/events?type=orderCreated")).json()["events"]
    assert len(stored) == 5  # the events themselves are kept
    metrics = (await api.http.get("/metrics")).text
    assert f'gateway_orders_failed_total{{reason="ignored",tenant="{api.tenant_id}"}} 5.0' in (
        metrics
    )


async def test_external_customer_id_alone_names_the_contact(api):
    answer = (await api.event(created("o-1", key_value=None, externalCustomerId="C-7"))).json()
    assert answer["status"] == "accepted"
    contact = await api.contact("C-7")
    assert (await api.get("/v1/orders/o-1")).json()["contactId"] == contact["id"]


@pytest.mark.both_transports
async def test_malformed_values_are_a_400_naming_the_param(api):
    for name, value in [("status", "SHIPPED"), ("TotalCost", "lots"), ("date", "May 14")]:
        response = await api.event(created("o-1", **{name: value}))
        assert response.status_code == 400
        assert response.json()["field"] == f"params.{name}"
    assert (await api.get("/v1/orders/o-1")).status_code == 404
    assert (await api.get("/v1/events?type=orderCreated")).json()["events"] == []


async def test_order_updated_upserts(api):
    partial = event("orderUpdated", externalOrderId="o-1", totalCost=300)
    answer = (await api.event(partial)).json()
    assert answer["status"] == "ignored"  # new, and orderCreated's rules apply
    assert "status" in answer["reason"] and "date" in answer["reason"]
    full = event(
        "orderUpdated",
        externalOrderId="o-1",
        totalCost=300,
        status="IN_PROGRESS",
        date="2024-01-01T00:00:00Z",
    )
    assert (await api.event(full)).json()["status"] == "accepted"
    assert (await api.event(partial | {"params": {"externalOrderId": "o-1", "Note": "x"}})).json()[
        "status"
    ] == "accepted"
    stored = (await api.get("/v1/orders/o-1")).json()
    assert stored["status"] == "IN_PROGRESS"
    assert (stored["order"]["totalCost"], stored["order"]["Note"]) == (300, "x")


async def test_delivered_and_cancelled_change_only_existing_orders(api, sync_redis):
    for kind in ("orderDelivered", "orderCancelled"):
        answer = (await api.event(event(kind, externalOrderId="missing"))).json()
        assert answer == {
            "status": "ignored",
            "eventId": answer["eventId"],
            "reason": "The order does not exist.",
        }
    assert (await api.get("/v1/orders/missing")).status_code == 404
    await post_orders(api, order("o-1"))
    assert (await api.event(event("orderDelivered", externalOrderId="o-1"))).json()[
        "status"
    ] == "accepted"
    assert (await api.event(event("orderCancelled", externalOrderId="o-1"))).json()[
        "status"
    ] == "accepted"
    stored = (await api.get("/v1/orders/o-1")).json()
    assert [(h["status"], h["source"]) for h in stored["history"]] == [
        ("INITIALIZED", "orders"),
        ("DELIVERED", "orderDelivered"),
        ("CANCELLED", "orderCancelled"),
    ]
    kinds = [t["type"] for t in triggers(sync_redis, api)]
    assert kinds == ["orderINITIALIZED", "orderDELIVERED", "orderCANCELLED"]


async def test_batches_report_ignored_order_events(api):
    batch = [
        created("o-1"),
        event("orderDelivered", externalOrderId="nope"),
        created("o-2", status="BAD"),
        event("pageViewed", page=orjson.dumps({"location": "https://x.example"}).decode()),
    ]
    answer = (await api.events(batch)).json()
    assert answer["accepted"] == 2
    assert answer["duplicates"] == 0
    assert [f["index"] for f in answer["failed"]] == [2]
    (ignored,) = answer["ignored"]
    assert (ignored["index"], ignored["reason"]) == (1, "The order does not exist.")
    assert (await api.get("/v1/orders/o-1")).status_code == 200


@pytest.mark.both_transports
async def test_site_keys_may_not_send_order_events(api):
    response = await api.event(event("orderDelivered", externalOrderId="o-1"), site=True)
    assert response.status_code == 403


async def test_a_repeated_event_id_does_not_apply_the_order_twice(api, sync_redis):
    await post_orders(api, order("o-1"))
    delivered = event("orderDelivered", externalOrderId="o-1") | {"eventId": "ev-1"}
    assert (await api.event(delivered)).json()["status"] == "accepted"
    assert (await api.event(delivered)).json()["status"] == "duplicate"
    assert (await api.contact("buyer@example.com"))["orders"]["count"] == 1
    assert len(triggers(sync_redis, api)) == 2


async def test_a_status_event_credits_the_orders_own_contact(api, sync_redis):
    await post_orders(api, order("o-1"))  # buyer@example.com
    owner = (await api.contact("buyer@example.com"))["id"]
    courier = event("orderDelivered", key_value="+380501234567", externalOrderId="o-1")
    assert (await api.event(courier)).json()["status"] == "accepted"
    assert (await api.contact("buyer@example.com"))["orders"]["count"] == 1
    other = await api.contact("+380501234567")  # the event is the phone contact's
    assert other["id"] != owner
    assert other["orders"]["count"] == 0
    assert triggers(sync_redis, api)[-1]["contactId"] == owner
    assert (await api.get("/v1/orders/o-1")).json()["contactId"] == owner
