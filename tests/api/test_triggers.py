"""Visits and abandonment triggers: types, precedence, rules, payload, the HTTP feed.

The contract: docs/triggers.md.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.embedded.server import EmbeddedRedis
from gateway.redis.constants import VISIT_TRIGGERS
from tests.support.gateways import Api, build_settings, free_port, tenant_config, unique
from tests.support.triggering import (
    SPANNING,
    TIMEOUT,
    cart,
    category,
    closed,
    open_visit,
    page,
    product,
    send,
    triggers,
)

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MUG = {"productId": "MUG-1", "quantity": 3, "price": 0.1, "name": "Mug"}


async def test_abandoned_cart_carries_the_visit(make_api):
    api, other = await make_api(visit_timeout_seconds=TIMEOUT)
    who = "Ann@Example.com"
    await send(
        api,
        page(who, visitorId="v-ann"),
        category(who, "Mugs"),
        product(who, "MUG-1", price=12345.678901234567),
        cart(who, "rs-1", [MUG]),
    )
    (trigger,) = await closed(api, 1)
    contact = await api.contact("ann@example.com")
    assert trigger["type"] == "abandonedCart"
    assert re.match(r"^visit:" + contact["id"] + r":\d+$", trigger["id"])
    assert trigger["tenant"] == api.tenant_id
    assert ISO.match(trigger["createdAt"])
    assert trigger["contact"] == {
        "id": contact["id"],
        "email": "ann@example.com",
        "phone": None,
        "externalCustomerId": None,
        "identifiers": contact["identifiers"],
    }
    assert trigger["visit"]["events"] == 4
    assert trigger["visit"]["startedAt"] <= trigger["visit"]["endedAt"] < trigger["createdAt"]
    assert trigger["cart"] == contact["cart"]
    assert trigger["cart"]["recycleStateId"] == "rs-1" and trigger["cart"]["total"] == 0.3
    # numbers are the shop's own, not re-encoded by Lua's cjson
    assert trigger["products"][0]["price"] == 12345.678901234567
    assert trigger["products"][0]["isInStock"] == 1
    assert [c["productCategoryId"] for c in trigger["categories"]] == ["Mugs"]
    assert ISO.match(trigger["categories"][0]["viewedAt"])
    assert await triggers(other) == []


async def test_precedence_of_the_trigger_types(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(
        api,
        category("browse@x.io", "Mugs"),
        product("browse@x.io", "P1"),
        page("category@x.io"),
        category("category@x.io", "Mugs"),
        page("visit@x.io"),
        page("visit@x.io"),
        page("custom@x.io"),
        {"eventTypeKey": "newsletterOpened", "keyValue": "custom@x.io"},
        product("cart@x.io", "P2"),
        cart("cart@x.io", "rs-prec", [MUG]),
    )
    found = await closed(api, 5)
    assert {t["contact"]["email"]: t["type"] for t in found} == {
        "browse@x.io": "abandonedBrowse",
        "category@x.io": "abandonedCategory",
        "visit@x.io": "abandonedVisit",
        "cart@x.io": "abandonedCart",
    }
    # what a webhook's `types` may name (settings) is what lib.lua emits
    assert {t["type"] for t in found} == set(VISIT_TRIGGERS)
    metrics = api.gateway.metrics
    assert metrics.triggers_emitted.get(api.tenant_id, "abandonedCart") == 1
    assert metrics.visits_closed.get(api.tenant_id) == 5


async def test_abandoned_cart_once_per_recycle_state(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(api, cart("bob@x.io", "rs-a", [MUG]))
    assert [t["type"] for t in await closed(api, 1)] == ["abandonedCart"]
    # the same cart, a later visit: it falls through to the next rule that applies
    await send(api, page("bob@x.io"))
    assert [t["type"] for t in await closed(api, 2)][1:] == ["abandonedVisit"]
    # a changed cart may be reported again
    await send(api, cart("bob@x.io", "rs-b", [MUG, {**MUG, "productId": "MUG-2"}]))
    third = (await closed(api, 3))[2]
    assert third["type"] == "abandonedCart" and third["cart"]["recycleStateId"] == "rs-b"


async def test_no_trigger_for_an_emptied_cart(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(api, cart("eve@x.io", "rs-full", [MUG]), cart("eve@x.io", "rs-empty", []))
    assert await closed(api, 1) == []


async def test_anonymous_visits_are_closed_and_counted_without_trigger(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    anonymous = {"visitorId": "v-1", "keyValue": None}
    await send(api, {**product("", "P1"), **anonymous}, {**cart("", "rs-anon", [MUG]), **anonymous})
    assert await closed(api, 1) == []
    assert api.gateway.metrics.visits_anonymous.get(api.tenant_id) == 1
    metrics = (await api.http.get("/metrics")).text
    assert f'gateway_visits_anonymous_total{{tenant="{api.tenant_id}"}} 1.0' in metrics


async def test_stitched_contact_gets_its_trigger_with_the_email(make_api):
    api, _ = await make_api(visit_timeout_seconds=SPANNING)
    anonymous = {"visitorId": "v-2", "keyValue": None}
    await send(api, {**product("", "P1"), **anonymous}, {**cart("", "rs-st", [MUG]), **anonymous})
    await send(api, page("zoe@x.io", visitorId="v-2"))
    (trigger,) = await closed(api, 1)
    assert trigger["type"] == "abandonedCart"
    assert trigger["contact"]["email"] == "zoe@x.io"
    assert trigger["contact"]["identifiers"]["visitorId"] == ["v-2"]
    assert trigger["visit"]["events"] == 3


async def test_feed_pages_with_a_cursor_and_filters_by_type(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(api, *[page(f"p{n}@x.io") for n in range(3)], product("b@x.io", "P"))
    assert len(await closed(api, 4)) == 4
    first = (await api.get("/v1/triggers", params={"limit": 2})).json()
    rest = (await api.get("/v1/triggers", params={"after": first["next"]})).json()
    assert len(first["triggers"]) == 2 and len(rest["triggers"]) == 2
    ids = [t["id"] for t in first["triggers"] + rest["triggers"]]
    assert len(set(ids)) == 4
    empty = (await api.get("/v1/triggers", params={"after": rest["next"]})).json()
    assert empty == {"triggers": [], "next": rest["next"]}
    browse = (await api.get("/v1/triggers", params={"type": "abandonedBrowse"})).json()
    assert [t["contact"]["email"] for t in browse["triggers"]] == ["b@x.io"]


@pytest.mark.both_transports
async def test_feed_refuses_bad_input_and_site_keys(api):
    # each once a 500: Redis refused the cursor that the pattern had let through
    beyond = str(2**64)
    for after in ("yesterday", "1\n", "\u0661", beyond, f"1-{beyond}", "1-2-3", "-1"):
        bad = await api.get("/v1/triggers", params={"after": after})
        assert (bad.status_code, bad.json()["field"]) == (400, "after"), after
    for wanted in ("no spaces", "abandonedCart\n"):
        bad = await api.get("/v1/triggers", params={"type": wanted})
        assert (bad.status_code, bad.json()["field"]) == (400, "type"), wanted
    largest = f"{2**64 - 1}-{2**64 - 1}"  # nothing can follow it: XRANGE refuses "(" + it
    last = await api.get("/v1/triggers", params={"after": largest})
    assert (last.status_code, last.json()) == (200, {"triggers": [], "next": largest})
    for path in ("/v1/triggers", "/v1/events", "/v1/webhooks/dead"):
        for limit in ("0", "1001", "\u00b2", "\u0663", "1" * 5000):  # "²" and "٣" were a 500
            bad = await api.get(path, params={"limit": limit})
            assert (bad.status_code, bad.json()["field"]) == (400, "limit"), (path, limit)
    site = await api.http.get(f"/v1/triggers?key={api.site_key}")
    assert site.status_code == 403
    assert (await api.http.get("/v1/webhooks/dead")).status_code == 401


async def test_next_event_closes_an_idle_visit_the_detector_has_not_reached(api, sync_redis):
    await send(api, product("late@x.io", "P1"))
    contact = (await api.contact("late@x.io"))["id"]
    # the visit went idle long ago, but its deadline is out of the detector's reach
    sync_redis.hset(api.keys.contact(contact), "v:last", 1)
    sync_redis.zadd(api.keys.visits, {contact: 2**50})
    await send(api, cart("late@x.io", "rs-late", [MUG]))
    # the old visit's trigger reflects it as it was: a browse, before the cart existed
    (trigger,) = await triggers(api)
    assert trigger["type"] == "abandonedBrowse" and trigger["cart"] is None
    visit = open_visit(sync_redis, api, contact)
    assert visit[b"n"] == b"1" and visit[b"cu"] == b"1"


async def test_detector_survives_a_redis_outage(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    tenant = unique("outage")
    settings = build_settings(
        server.url, tmp_path, [tenant_config(tenant, visit_timeout_seconds=TIMEOUT)]
    )
    app = create_app(settings)
    lifespan = app.lifespan()
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            api = Api(http, app.state, tenant, f"sk_{tenant}", f"pk_{tenant}")
            await send(api, page("out@x.io"))
            server.stop()  # saves: the open visit survives the outage
            await asyncio.sleep(2 * TIMEOUT)  # the deadline passes while Redis is down
            server.start()
            (trigger,) = await closed(api, 1, timeout=8)
            assert trigger["contact"]["email"] == "out@x.io"
    finally:
        await lifespan.__aexit__(None, None, None)
        server.stop()


async def test_a_rare_type_is_paged_through_a_long_stream(api, sync_redis):
    stream = api.keys.triggers
    with sync_redis.pipeline(transaction=False) as pipe:
        for n in range(10_100):
            pipe.xadd(stream, {"type": "orderINITIALIZED", "trigger": f'{{"n":{n}}}'})
        pipe.xadd(stream, {"type": "abandonedVisit", "trigger": '{"id":"rare"}'})
        pipe.execute()
    rare = {"type": "abandonedVisit"}
    first = (await api.get("/v1/triggers", params=rare)).json()
    assert first["triggers"] == [] and first["next"] != "0-0"
    second = await api.get("/v1/triggers", params={**rare, "after": first["next"]})
    assert second.json()["triggers"] == [{"id": "rare", "deliveries": []}]


async def test_product_views_read_back_as_sent_in_both_stored_forms(make_api, sync_redis):
    # recommendations.py stores the usual view compact (productId first, plain ids) and any
    # other whole; the contact and the trigger rebuild both with the same keys, order and values.
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    who = "forms@x.io"
    views = [
        {"productId": "P1", "price": 1.5, "name": 'a|b "c"', "tags": ["x|y"]},  # compact
        {"price": 2, "productId": "P2"},  # productId not first: whole
        {"productId": 'P"3'},  # an id JSON escapes: whole
    ]
    await send(
        api,
        *[
            {
                "eventTypeKey": "productViewed",
                "keyValue": who,
                "params": {"product": orjson.dumps(view).decode(), "currencyCode": "EUR"},
            }
            for view in views
        ],
    )
    (stored,) = (await api.get("/v1/events", params={"contact": who, "limit": 1})).json()["events"]
    expected = [{**view, "currencyCode": "EUR", "viewedAt": stored["receivedAt"]} for view in views]
    contact = await api.contact(who)
    raw = sync_redis.hgetall(api.keys.contact(contact["id"], ":pvd"))
    assert raw[b"P1"] == b'0|EUR|"price":1.5,"name":"a|b \\"c\\"","tags":["x|y"]'
    assert raw[b"P2"].startswith(b"{")
    (trigger,) = await closed(api, 1)
    for read_back in (contact["recentProducts"], trigger["products"]):
        by_id = {p["productId"]: p for p in read_back}
        assert [list(by_id[v["productId"]].items()) for v in expected] == [
            list(v.items()) for v in expected
        ]
