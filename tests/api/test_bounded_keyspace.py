"""Bounded memory: every key the gateway writes expires, or is one of the few tenant-wide
structures listed below with what bounds it (docs/operations.md, Bounded memory).

After a mixed workload nothing else is left without a TTL; the keys of a contact (stitched,
with a cart, a visit) and of an order and its cart each carry one.
"""

from __future__ import annotations

import asyncio
import re

import orjson

from gateway.redis.constants import VISIT_TRIGGERS
from tests.support.events import good
from tests.support.faults import page_view
from tests.support.gateways import free_port
from tests.support.metrics import sample
from tests.support.orders import cart_event, order, post_orders
from tests.support.triggering import open_visit
from tests.support.waiting import wait_for

# Tenant-wide keys without a TTL (names after the tenant's prefix), and what keeps each one bounded.
BOUNDED = {
    r"events": "stream, XADD MAXLEN ~ events_stream_maxlen",
    r"triggers": "stream, XADD MAXLEN ~ 1000000",
    r"visits": "zset, one member per open visit; the detector removes closed ones",
    r"tally": "hash of a few counters, drained by the detector",
    r"wh:[^:]+:(due|jobs|tries)": "pending webhook deliveries, until delivered or dead-lettered",
    r"wh:[^:]+:dead": "zset, capped at the newest 10000 dead stream ids of the webhook",
    r"wh:[^:]+:since": "string, one per webhook (where its consumer group started)",
    r"wh:dead": "list, capped at the newest 10000 dead letters",
    r"pending(:jobs)?": "delayed triggers, one per contact at most, until due",
}
BOUNDED_NAME = re.compile("|".join(f"(?:{pattern})" for pattern in BOUNDED) + "$")
STREAM_SLACK = 200  # MAXLEN ~ trims whole radix-tree nodes (100 entries each), so a little over
LIMITS = {"events_stream_maxlen": 1000, "recent_views": 3, "contact_events": 5}


def mixed_events(n: int, who: str) -> list[dict[str, object]]:
    """Every event type, stitching (visitor then email), carts filled and emptied, retries."""
    events: list[dict[str, object]] = []
    for i in range(n):
        email = f"{who}{i % 5}@x.io"
        contact = {"visitorId": f"{who}-v{i % 7}"} if i % 3 else {"keyValue": email}
        kind = i % 6
        if kind == 0:
            params = {"product": f'{{"productId":"P{i % 9}","price":3}}', "currencyCode": "USD"}
            event: dict[str, object] = {"eventTypeKey": "productViewed", "params": params}
        elif kind == 1:
            params = {"category": f'{{"productCategoryId":"C{i % 9}"}}'}
            event = {"eventTypeKey": "productCategoryViewed", "params": params}
        elif kind == 2:
            products = "[]" if i % 4 == 0 else f'[{{"productId":"P{i}","quantity":1,"price":2}}]'
            params = {"products": products, "recycleStateId": f"{who}-rs{i}"}
            event = {"eventTypeKey": "cartUpdated", "params": params}
        elif kind == 3:
            event = page_view(f"{who}-e{i % 50}", who)  # eventIds repeat: duplicates
            params = {}
        else:
            params = {"productId": f"P{i}"}
            event = {"eventTypeKey": "wishlistAdded", "params": params}
        if i % 11 == 0 and kind != 3:
            params["email"] = email  # a visitor naming its email: stitched into that contact
        events.append({**event, **contact})
    return events


async def test_every_key_expires_or_is_a_listed_bounded_structure(make_api, sync_redis):
    hook = {"url": f"http://127.0.0.1:{free_port()}/nobody-listens", "secret": "whsec_12345678"}
    a, _ = await make_api(
        gateway=LIMITS,
        rate_limit_per_second=100_000,
        visit_timeout_seconds=0.2,  # the detector closes visits and emits triggers meanwhile
        webhooks=[hook],  # deliveries that fail and wait for their retry
    )
    sent = 0
    for start in range(0, 1500, 100):
        batch = mixed_events(100, f"m{start}")
        response = await a.events(batch)
        assert response.status_code == 200 and response.json()["failed"] == [], response.text
        sent += len(batch)
        orders = [
            {
                "externalOrderId": f"o{start}-{i}",
                "status": status,
                "totalCost": 5,
                "date": "2026-01-01T10:00:00",
                "email": f"m{start}{i}@x.io",
                "recycleStateId": f"m{start}-rs{i * 6 + 2}",
            }
            for i, status in enumerate(["INITIALIZED", "DELIVERED", "CANCELLED"])
        ]
        response = await a.http.post("/v1/orders", json={"orders": orders}, headers=a.server())
        assert response.status_code == 200 and response.json()["failedOrders"] == []
    # The idle visits close: wait for the detector to have closed and counted every one (on
    # /metrics), and for a webhook delivery to have failed, so that the keys closing visits
    # leave (triggers, the tally, webhook jobs waiting for their retry) are checked below too.
    tenant = {"tenant": a.tenant_id}

    async def every_visit_closed() -> bool:
        metrics = (await a.http.get("/metrics")).text
        return (
            sync_redis.zcard(a.keys.visits) == 0
            and not sync_redis.exists(a.keys.tally)
            and sample(metrics, "gateway_visits_closed_total", **tenant) > 0
            and sample(metrics, "gateway_webhook_failures_total", **tenant) > 0
        )

    await wait_for(every_visit_closed, what="every visit closed and a delivery failed")
    metrics = (await a.http.get("/metrics")).text
    closed = sample(metrics, "gateway_visits_closed_total", **tenant)
    triggered = sum(
        sample(metrics, "gateway_triggers_emitted_total", type=kind, **tenant)
        for kind in VISIT_TRIGGERS
    )
    assert triggered > 0 and sync_redis.xlen(a.keys.triggers) > 0
    assert (await a.http.get(f"/v1/events?key={a.site_key}")).status_code == 403
    prefix = a.keys.prefix + ":"
    keys = [k.decode() for k in sync_redis.scan_iter(match=prefix + "*", count=1000)]
    unbounded, untimed, kinds = [], [], set()
    for key in keys:
        name = key[len(prefix) :]
        kind = name.split(":", 1)[0]
        kinds.add(kind)
        if sync_redis.pttl(key) != -1:  # a TTL, or gone since the scan (a rate bucket lives ~1 s)
            continue
        untimed.append(name)
        if not BOUNDED_NAME.match(name):
            unbounded.append(key)
    print(
        f"\nbounded keyspace: sent={sent} events + 45 orders, visits closed={closed:.0f} "
        f"with {triggered:.0f} triggers, keys={len(keys)} "
        f"kinds={sorted(kinds)} without TTL: {sorted(untimed)}, none of them unlisted: {unbounded}"
    )
    assert not unbounded
    assert {"c", "id", "dedup", "cart", "rate", "events", "o", "triggers", "wh"} <= kinds
    assert sync_redis.xlen(a.keys.events) <= LIMITS["events_stream_maxlen"] + STREAM_SLACK
    for key in keys:
        if key.endswith(":ev"):
            assert sync_redis.llen(key) <= LIMITS["contact_events"]
        elif key.endswith(":pv") or key.endswith(":cv"):
            assert sync_redis.zcard(key) <= LIMITS["recent_views"]
        elif key.endswith(":pvd"):
            assert sync_redis.hlen(key) <= LIMITS["recent_views"]


async def test_every_key_of_a_contact_has_a_ttl(api, sync_redis):
    cart = orjson.dumps([{"productId": "P1", "quantity": 1, "price": 3}]).decode()
    category = orjson.dumps({"productCategoryId": "Mugs"}).decode()
    await api.event(good(300))
    await api.event(
        {**good(301), "params": good(301)["params"] + [{"name": "phone", "value": "+380501112233"}]}
    )
    for body in (
        {
            "eventTypeKey": "cartUpdated",
            "params": [
                {"name": "email", "value": "buyer300@example.com"},
                {"name": "products", "value": cart},
                {"name": "recycleStateId", "value": "rs-ttl"},
            ],
        },
        {
            "eventTypeKey": "productCategoryViewed",
            "keyValue": "buyer300@example.com",
            "params": [{"name": "category", "value": category}],
        },
        # stitches buyer301 (and its phone) into buyer300
        {
            "eventTypeKey": "login",
            "params": [
                {"name": "email", "value": "buyer300@example.com"},
                {"name": "phone", "value": "+380501112233"},
            ],
        },
        good(300),
    ):
        answer = await api.event(body)
        assert answer.status_code == 200, answer.text
    keys = list(sync_redis.scan_iter(match=f"{api.keys.prefix}:[ic]*", count=1000))
    assert len(keys) >= 9
    assert {k: sync_redis.ttl(k) for k in keys if sync_redis.ttl(k) <= 0} == {}


async def test_a_visit_opened_after_a_timeout_has_a_ttl(make_api, sync_redis):
    api, _ = await make_api(visit_timeout_seconds=0.2)
    assert (await api.event(good(400))).status_code == 200
    await asyncio.sleep(0.4)
    assert (await api.event({**good(400), "eventId": "again"})).status_code == 200
    cid = sync_redis.get(api.keys.identifier("email", "buyer400@example.com")).decode()
    assert open_visit(sync_redis, api, cid)[b"n"] == b"1"  # a new visit
    assert sync_redis.ttl(api.keys.contact(cid)) > 0  # it lives in the contact's hash


async def test_everything_has_a_ttl(api, sync_redis):
    keys = api.keys
    await api.event(cart_event("rs-1"))
    await post_orders(api, order("o-1", status="DELIVERED"))
    contact = (await api.contact("buyer@example.com"))["id"]
    for key in (
        keys.order("o-1"),
        keys.order("o-1", ":f"),
        keys.order("o-1", ":h"),
        keys.cart("rs-1"),
        keys.contact(contact, ":rfm"),
        keys.contact(contact, ":rfmo"),
        keys.contact(contact),
        keys.identifier("email", "buyer@example.com"),
    ):
        assert sync_redis.ttl(key) > 0, key
