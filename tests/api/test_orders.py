"""POST /v1/orders and GET /v1/orders/{id}: seeds 000/002/003 as printed, failures, updates.

The contract: docs/api.md, Orders API.
"""

from __future__ import annotations

import re

import orjson
import pytest

from tests.support.orders import order, post_orders, triggers
from tests.support.seeds import json_blocks, seed_text

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def seed_orders(prefix: str) -> str:
    (body,) = json_blocks(seed_text(prefix), '"orders"')
    return body


@pytest.mark.parametrize("prefix", ["000", "002", "003"])
async def test_seed_order_bodies_are_stored_as_printed(api, sync_redis, prefix):
    body = seed_orders(prefix)
    response = await api.http.post("/v1/orders", content=body.encode(), headers=api.server())
    assert response.status_code == 200, response.text
    assert response.json() == {"failedOrders": []}

    sent = orjson.loads(body)["orders"][0]
    stored = (await api.get("/v1/orders/100500")).json()
    assert stored["status"] == "INITIALIZED"
    assert stored["order"] == {**sent, "email": sent["email"].lower()}  # extra fields kept
    assert [h["status"] for h in stored["history"]] == ["INITIALIZED"]

    contact = await api.contact("12345")  # externalCustomerId finds the contact
    assert contact["id"] == stored["contactId"]
    assert contact["identifiers"]["externalCustomerId"] == ["12345"]
    assert contact["identifiers"]["phone"] == ["380942583691"]
    assert (await api.contact("380942583691"))["id"] == contact["id"]

    (trigger,) = triggers(sync_redis, api)
    assert trigger["type"] == "orderINITIALIZED"
    assert trigger["tenant"] == api.tenant_id
    assert ISO_MS.match(trigger["createdAt"])
    assert (trigger["externalOrderId"], trigger["orderId"], trigger["contactId"]) == (
        "100500",
        stored["orderId"],
        contact["id"],
    )
    assert (trigger["email"], trigger["phone"]) == (sent["email"].lower(), "380942583691")
    assert trigger["contact"]["id"] == contact["id"]
    assert trigger["contact"]["identifiers"]["externalCustomerId"] == ["12345"]
    assert trigger["order"] == stored["order"]


async def test_seed_003_mangled_email_is_kept_as_an_email(api):
    await api.http.post("/v1/orders", content=seed_orders("003"), headers=api.server())
    contact = await api.contact("[email protected]")
    assert contact["identifiers"]["email"] == ["[email protected]"]
    assert contact["id"] == (await api.contact("12345"))["id"]


@pytest.mark.both_transports
async def test_every_failure_reason_is_listed_and_valid_orders_are_stored(api):
    bad = [
        order("", totalCost=1),
        order("no-status", status=None),
        order("bad-status", status="SHIPPED"),
        order("no-cost", totalCost=None),
        order("negative", totalCost=-1),
        order("word-cost", totalCost="a lot"),
        order("huge-cost", totalCost=1e300),
        order("no-date", date=None),
        order("bad-date", date="14.05.2024"),
        order("not-a-date", date="2024-13-40T10:11:00"),
        order("nobody", email=None),
        order("bad-phone", email=None, phone="call me"),
        order("bad-items", items="not json"),
        "not an object",
        order("two-problems", status="X", date="yesterday"),
    ]
    body = await post_orders(api, order("good-1"), *bad, order("good-2", status="DELIVERED"))
    failed = {f["index"]: f for f in body["failedOrders"]}
    assert sorted(failed) == list(range(1, len(bad) + 1))

    def reasons(index):
        return " ".join(failed[index]["errors"])

    assert "externalOrderId is required" in reasons(1)
    assert failed[1]["externalOrderId"] == ""
    assert "status is required" in reasons(2)
    assert failed[2]["externalOrderId"] == "no-status"
    assert "status must be one of INITIALIZED" in reasons(3)
    assert "totalCost is required" in reasons(4)
    for index in (5, 6, 7):
        assert "totalCost must be a number from 0 to 1e+15" in reasons(index)
    assert "date is required" in reasons(8)
    assert "date must look like YYYY-MM-ddTHH:mm:ss" in reasons(9)
    assert "date is not a real date" in reasons(10)
    assert "One of externalCustomerId, email, phone is required" in reasons(11)
    assert "phone must be digits" in reasons(12)
    assert "items must be an array" in reasons(13)
    assert failed[14] == {
        "index": 14,
        "externalOrderId": None,
        "errors": ["The order must be a JSON object."],
    }
    assert len(failed[15]["errors"]) == 2

    assert (await api.get("/v1/orders/good-1")).json()["status"] == "INITIALIZED"
    assert (await api.get("/v1/orders/good-2")).json()["status"] == "DELIVERED"
    for name in ("no-status", "negative", "nobody", "bad-phone"):
        assert (await api.get(f"/v1/orders/{name}")).status_code == 404
    metrics = (await api.http.get("/metrics")).text
    assert f'gateway_orders_failed_total{{reason="invalid",tenant="{api.tenant_id}"}} 15.0' in (
        metrics
    )
    labels = f'source="orders",status="DELIVERED",tenant="{api.tenant_id}"'
    stored = f"gateway_orders_stored_total{{{labels}}}"
    assert f"{stored} 1.0" in metrics


async def test_the_same_external_order_id_updates_the_order(api, sync_redis):
    await post_orders(api, order("o-1", items=[{"externalItemId": "1", "quantity": 1}]))
    await post_orders(api, order("o-1", status="IN_PROGRESS", totalCost="120.5", note="gift"))
    await post_orders(api, order("o-1", status="DELIVERED", totalCost="120.5", note="gift"))
    stored = (await api.get("/v1/orders/o-1")).json()
    assert stored["status"] == "DELIVERED"
    assert stored["order"]["totalCost"] == 120.5
    assert stored["order"]["note"] == "gift"
    assert stored["order"]["items"] == [{"externalItemId": "1", "quantity": 1}]  # kept
    assert [h["status"] for h in stored["history"]] == ["INITIALIZED", "IN_PROGRESS", "DELIVERED"]
    assert all(ISO_MS.match(h["at"]) for h in stored["history"])
    kinds = [t["type"] for t in triggers(sync_redis, api)]
    assert kinds == ["orderINITIALIZED", "orderIN_PROGRESS", "orderDELIVERED"]
    assert len({t["id"] for t in triggers(sync_redis, api)}) == 3


async def test_an_order_id_with_a_line_break_is_read_back(api):
    # the route's parameter takes any character (app.AnyText); "a\nb" once got the router's 404
    await post_orders(api, order("a\nb"), order("a"))
    answer = await api.get("/v1/orders/a%0Ab")
    assert answer.status_code == 200 and answer.json()["order"]["externalOrderId"] == "a\nb"


async def test_a_retried_identical_order_changes_nothing_and_emits_no_trigger(api, sync_redis):
    await post_orders(api, order("o-1"))
    await post_orders(api, order("o-1"))
    assert len(triggers(sync_redis, api)) == 1
    assert len((await api.get("/v1/orders/o-1")).json()["history"]) == 1


async def test_items_as_a_json_string_are_decoded_to_the_second_level(api):
    items = [{"externalItemId": "1", "name": "Mug", "tags": ["a"], "meta": {"deep": {"x": 1}}}]
    await post_orders(api, order("o-1", items=orjson.dumps(items).decode()))
    (item,) = (await api.get("/v1/orders/o-1")).json()["order"]["items"]
    assert item == {
        "externalItemId": "1",
        "name": "Mug",
        "tags": '["a"]',
        "meta": '{"deep":{"x":1}}',
    }


async def test_every_status_emits_its_trigger(api, sync_redis):
    statuses = ["INITIALIZED", "IN_PROGRESS", "DELIVERED", "CANCELLED", "ABANDONED_SHOPPING_CART"]
    await post_orders(api, *[order(f"o-{s}", status=s) for s in statuses])
    assert sorted(t["type"] for t in triggers(sync_redis, api)) == sorted(
        f"order{s}" for s in statuses
    )


@pytest.mark.both_transports
async def test_request_level_errors(make_api):
    api, _ = await make_api(gateway={"max_batch": 3})
    too_many = {"orders": [order(f"o-{i}") for i in range(4)]}
    response = await api.http.post("/v1/orders", json=too_many, headers=api.server())
    assert response.status_code == 413
    assert response.json()["field"] == "orders"
    for content in (b"{", b"[]", b'{"orders": {}}'):
        response = await api.http.post("/v1/orders", content=content, headers=api.server())
        assert response.status_code == 400
        assert response.json()["field"] in ("body", "orders")
    response = await api.http.post(
        "/v1/orders", content=b"<x/>", headers={**api.server(), "content-type": "text/xml"}
    )
    assert response.status_code == 415
    site = await api.http.post(
        f"/v1/orders?key={api.site_key}",
        json={"orders": [order("o-1")]},
        headers={"origin": "https://shop.example"},
    )
    assert site.status_code == 403
    assert (await api.http.post("/v1/orders", json={"orders": []})).status_code == 401
    assert (await api.get("/v1/orders/o-1")).status_code == 404
    assert (await api.get("/v1/orders/o-1")).json()["error"] == "not_found"


@pytest.mark.both_transports
async def test_redis_down_answers_503_and_never_a_2xx(no_redis):
    http, auth = no_redis
    response = await http.post("/v1/orders", headers=auth, json={"orders": [order("o")]})
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    assert response.json()["error"] == "redis_unavailable"
    for path in ("/v1/orders/o", "/v1/carts/rs-1"):
        assert (await http.get(path, headers=auth)).status_code == 503


@pytest.mark.both_transports
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"externalOrderId": {"id": 1}}, "externalOrderId must be a string."),
        ({"externalCustomerId": "x" * 257}, "externalCustomerId is longer than 256 characters."),
        ({"items": "[{"}, "items is not valid JSON."),
        ({"items": [1, 2]}, "items must be an array of objects."),
        ({"currency": 840}, "currency must be a code like 'USD'."),
        ({"shipping": True}, "shipping must be a number from 0 to 1e+15."),
    ],
)
async def test_malformed_optional_fields_fail_the_order(api, fields, message):
    body = await post_orders(api, order("o-1", **fields))
    (failed,) = body["failedOrders"]
    assert message in failed["errors"]
    assert (await api.get("/v1/orders/o-1")).status_code == 404


async def test_triggers_carry_every_value_exactly(api, sync_redis):
    odd = order(
        "o/1 ü",
        email='  O"Hara@Example.com ',
        totalCost=0.1,
        **{'we"ird/name': "line\u2028break ü", "bigId": 98765432109876543, "ratio": 1 / 3},
    )
    await post_orders(api, odd)
    (trigger,) = triggers(sync_redis, api)
    stored = (await api.get("/v1/orders/o/1 ü")).json()["order"]
    assert trigger["order"] == stored
    assert stored["bigId"] == 98765432109876543
    assert stored["ratio"] == 1 / 3
    assert stored['we"ird/name'] == "line\u2028break ü"
    assert trigger["email"] == stored["email"] == 'o"hara@example.com'
    assert trigger["externalOrderId"] == "o/1 ü"


async def test_a_thousand_orders_in_one_request(api):
    batch = [
        order(f"o-{i}", email=f"b{i % 50}@example.com", status="DELIVERED") for i in range(1000)
    ]
    assert (await post_orders(api, *batch)) == {"failedOrders": []}
    assert (await api.get("/v1/orders/o-999")).json()["status"] == "DELIVERED"
    assert (await api.contact("b7@example.com"))["orders"]["count"] == 20


async def test_a_contact_s_orders_are_listed_newest_first(make_api):
    api, other = await make_api()
    await post_orders(api, order("first"), order("someone-else", email="other@example.com"))
    await post_orders(api, order("second", status="DELIVERED", phone="+380501234567"))
    listed = (await api.get("/v1/contacts/+380501234567/orders")).json()["orders"]
    assert [o["externalOrderId"] for o in listed] == ["second", "first"]
    assert listed[0] == (await api.get("/v1/orders/second")).json()
    assert (await api.get("/v1/contacts/nobody@example.com/orders")).status_code == 404
    assert (await other.get("/v1/contacts/buyer@example.com/orders")).status_code == 404
    site = await api.http.get(f"/v1/contacts/buyer@example.com/orders?key={api.site_key}")
    assert site.status_code == 403
