"""POST /v1/event and /v1/events: the seed examples, decoding, idempotency, batches, errors.

The contract: docs/api.md, Sending events; page views from apps: docs/apps.md.
"""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from tests.support.seeds import json_blocks, seed_text

SEED_EVENTS = json_blocks(seed_text("004"), "eventTypeKey")


def event(event_type: str, email: str = "ann@example.com", **params: Any) -> dict[str, Any]:
    return {
        "eventTypeKey": event_type,
        "keyValue": email,
        "params": [{"name": k, "value": v} for k, v in params.items()],
    }


@pytest.mark.parametrize(
    "body", SEED_EVENTS, ids=[orjson.loads(b)["eventTypeKey"] for b in SEED_EVENTS]
)
async def test_every_seed_004_example_is_accepted_as_printed(api, body):
    response = await api.http.post(
        "/v1/event",
        content=body.encode(),
        headers={**api.server(), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    parsed = orjson.loads(body)
    stored = await api.get("/v1/events", params={"contact": parsed["keyValue"]})
    assert [e["eventTypeKey"] for e in stored.json()["events"]] == [parsed["eventTypeKey"]]


async def test_seed_product_view_is_repaired_and_marked(api):
    (body,) = [b for b in SEED_EVENTS if '"productViewed"' in b]
    assert (await api.http.post("/v1/event", content=body, headers=api.server())).status_code == 200
    (stored,) = (await api.get("/v1/events?contact=example@email.com")).json()["events"]
    assert stored["repaired"] is True
    assert stored["params"]["product"] == {
        "productId": "WS01-L-Green",
        "price": 45.5,
        "isInStock": 1,
        "someProductProperty": ["green"],
    }
    contact = await api.contact("example@email.com")
    (view,) = contact["recentProducts"]
    assert (view["productId"], view["price"], view["isInStock"], view["currencyCode"]) == (
        "WS01-L-Green",
        45.5,
        1,
        "USD",
    )
    metrics = (await api.http.get("/metrics")).text
    assert f'gateway_events_repaired_total{{tenant="{api.tenant_id}"}} 1.0' in metrics


async def test_decoding_keeps_two_levels_and_serializes_deeper(api):
    items = [{"externalItemId": "1", "tags": ["a", "b"], "meta": {"deep": {"x": 1}}}]
    body = event(
        "wishlist",
        items=orjson.dumps(items).decode(),
        plain="just text",
        obj={"already": {"an": "object"}},
    )
    assert (await api.event(body)).status_code == 200
    (stored,) = (await api.get("/v1/events?contact=ann@example.com")).json()["events"]
    (item,) = stored["params"]["items"]
    assert item["tags"] == '["a","b"]'  # third level: stays a serialized string
    assert item["meta"] == '{"deep":{"x":1}}'
    assert stored["params"]["plain"] == "just text"
    assert stored["params"]["obj"] == {"already": {"an": "object"}}
    assert "repaired" not in stored


async def test_params_may_be_an_object(api):
    body = {
        "eventTypeKey": "productCategoryViewed",
        "keyValue": "ann@example.com",
        "params": {"category": '{"productCategoryId":"Mugs"}'},
    }
    assert (await api.event(body)).status_code == 200
    contact = await api.contact("ann@example.com")
    assert [c["productCategoryId"] for c in contact["recentCategories"]] == ["Mugs"]


@pytest.mark.parametrize(
    ("location", "scheme", "channel"),
    [
        ("https://shop.example/p/1", "https", "web"),
        ("myapp://product/42", "myapp", "app"),
        ("https://shop.example/universal/42", "https", "web"),
        ("fb123://open", "fb123", "app"),
    ],
)
async def test_page_views_from_web_and_apps(api, location, scheme, channel):
    body = event("pageViewed", page=orjson.dumps({"location": location}).decode())
    assert (await api.event(body)).status_code == 200
    (stored,) = (await api.get("/v1/events?contact=ann@example.com")).json()["events"]
    assert (stored["location"], stored["scheme"], stored["channel"]) == (location, scheme, channel)


async def test_cart_update_replaces_the_cart_and_empty_clears_it(api):
    products = [
        {"productId": "A", "quantity": 2, "price": 10.25},
        {"productId": "B", "quantity": "1", "price": "5"},
    ]
    first = event(
        "cartUpdated",
        products=orjson.dumps(products).decode(),
        currencyCode="EUR",
        recycleStateId="r1",
    )
    assert (await api.event(first)).status_code == 200
    cart = (await api.contact("ann@example.com"))["cart"]
    assert (cart["recycleStateId"], cart["total"], cart["currencyCode"]) == ("r1", 25.5, "EUR")
    assert [p["productId"] for p in cart["products"]] == ["A", "B"]
    empty = event("cartUpdated", products="[]", recycleStateId="r2")
    assert (await api.event(empty)).status_code == 200
    assert (await api.contact("ann@example.com"))["cart"] is None


@pytest.mark.both_transports
async def test_text_plain_and_gzip_bodies(api):
    body = orjson.dumps(event("pageViewed", page='{"location":"https://a.example"}'))
    plain = await api.http.post(
        f"/v1/event?key={api.site_key}",
        content=body,
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert plain.status_code == 200, plain.text
    zipped = await api.http.post(
        "/v1/event",
        content=gzip.compress(body),
        headers={**api.server(), "content-type": "application/json", "content-encoding": "gzip"},
    )
    assert zipped.status_code == 200, zipped.text
    stored = (await api.get("/v1/events?contact=ann@example.com")).json()["events"]
    assert len(stored) == 2


async def test_event_id_makes_retries_idempotent(api, sync_redis):
    body = {**event("pageViewed", page='{"location":"https://a.example"}'), "eventId": "e-1"}
    first, second = await api.event(body), await api.event(body)
    assert first.json() == {"status": "accepted", "eventId": "e-1"}
    assert second.json() == {"status": "duplicate", "eventId": "e-1"}
    assert sync_redis.xlen(api.keys.events) == 1
    batch = await api.events([body, {**body, "eventId": "e-2"}])
    assert batch.json() == {"accepted": 1, "duplicates": 1, "failed": []}
    metrics = (await api.http.get("/metrics")).text
    assert f'gateway_events_duplicate_total{{tenant="{api.tenant_id}"}} 2.0' in metrics


@pytest.mark.both_transports
async def test_batch_stores_the_good_events_and_reports_the_bad(api, sync_redis):
    good = event("pageViewed", page='{"location":"https://a.example"}')
    bad_product = event("productViewed", product='{"price": 1}')
    response = await api.http.post(
        "/v1/events", json={"events": [good, bad_product, 7, good]}, headers=api.server()
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(f["index"], f["field"]) for f in body["failed"]] == [
        (1, "params.product.productId"),
        (2, "body"),
    ]
    assert sync_redis.xlen(api.keys.events) == 2


async def test_custom_events_need_no_params(api):
    response = await api.event({"eventTypeKey": "newsletter.signup-1", "visitorId": "v9"})
    assert response.status_code == 200
    (stored,) = (await api.get("/v1/events?contact=v9&type=newsletter.signup-1")).json()["events"]
    assert stored["params"] == {}
    metrics = (await api.http.get("/metrics")).text
    assert f'gateway_events_accepted_total{{tenant="{api.tenant_id}",type="custom"}} 1.0' in metrics


async def test_reading_events_newest_first_with_type_and_limit(api):
    for n in range(3):
        await api.event(event("pageViewed", page=f'{{"location":"https://a.example/{n}"}}'))
        await api.event(event("productCategoryViewed", category=f'{{"productCategoryId":"c{n}"}}'))
    pages = (await api.get("/v1/events?contact=ann@example.com&type=pageViewed&limit=2")).json()
    assert [e["location"] for e in pages["events"]] == [
        "https://a.example/2",
        "https://a.example/1",
    ]
    everything = (await api.get("/v1/events?limit=10")).json()["events"]
    assert len(everything) == 6
    assert {e["contactId"] for e in everything} == {(await api.contact("ann@example.com"))["id"]}


async def test_a_type_filter_reads_at_most_10000_events(make_api):
    """A rare type made one request read the whole stream (a million events: most of a second
    of Redis each time). Past the newest 10000 events it is not looked for, tenant-wide or in a
    contact's own list (here as long as the stream)."""
    api, _ = await make_api(gateway={"contact_events": 20_000})
    rare = {"eventTypeKey": "rareThing", "keyValue": "ann@example.com"}
    assert (await api.event({**rare, "eventId": "too-old"})).status_code == 200
    common = [{"eventTypeKey": "common", "keyValue": "ann@example.com"}] * 1000
    for _ in range(10):
        answer = await api.events(common)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1000
    for query in ("type=rareThing", "type=rareThing&contact=ann@example.com"):
        assert (await api.get(f"/v1/events?{query}")).json()["events"] == []
    assert (await api.event({**rare, "eventId": "new"})).status_code == 200
    for query in ("type=rareThing", "type=rareThing&contact=ann@example.com"):
        found = (await api.get(f"/v1/events?{query}&limit=5")).json()["events"]
        assert [e["eventId"] for e in found] == ["new"]
    # without a type, the newest `limit` as before
    found = (await api.get("/v1/events?contact=ann@example.com&limit=3")).json()["events"]
    assert [e["eventTypeKey"] for e in found] == ["rareThing", "common", "common"]
