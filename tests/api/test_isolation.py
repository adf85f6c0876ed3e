"""Tenants: nothing of one tenant reaches another (docs/api.md, Authentication; tenants are
configured as in docs/configuration.md).

Every documented read endpoint is listed here with a way to store something of tenant a under a
unique marker; tenant b's key must get 404 for it (or not see it in a listing), site keys get 403,
no key 401. A test checks that the list covers every documented read endpoint, so a new endpoint
cannot go without an isolation test. Orders, carts and their figures stay with their tenant too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from gateway.api.openapi import build
from tests.support.gateways import Api, unique
from tests.support.orders import cart_event, order, post_orders, triggers


def page(marker: str) -> dict[str, object]:
    return {
        "eventTypeKey": "pageViewed",
        "keyValue": f"{marker}@example.com",
        "params": [{"name": "page", "value": f'{{"location":"https://shop.example/{marker}"}}'}],
    }


async def seed_event(a: Api, marker: str) -> None:
    assert (await a.event(page(marker))).status_code == 200


async def seed_cart(a: Api, marker: str) -> None:
    products = '[{"productId":"P1","quantity":1,"price":2}]'
    cart = {
        "eventTypeKey": "cartUpdated",
        "keyValue": f"{marker}@example.com",
        "params": {"products": products, "recycleStateId": marker},
    }
    assert (await a.event(cart)).status_code == 200


async def seed_order(a: Api, marker: str) -> None:
    order = {
        "externalOrderId": marker,
        "status": "INITIALIZED",
        "totalCost": 2,
        "date": "2026-01-01T10:00:00",
        "email": f"{marker}@example.com",
    }
    response = await a.http.post("/v1/orders", json={"orders": [order]}, headers=a.server())
    assert response.status_code == 200 and response.json()["failedOrders"] == []


async def seed_product(a: Api, marker: str) -> None:
    response = await a.http.post(
        "/v1/products", json={"products": [{"productId": marker}]}, headers=a.server()
    )
    assert response.status_code == 200 and response.json()["updated"] == 1


async def seed_event_type(a: Api, marker: str) -> None:
    """An event of a type named by the marker: the per-minute counts name it."""
    custom = {"eventTypeKey": marker, "keyValue": f"{marker}@example.com"}
    assert (await a.event(custom)).status_code == 200


@dataclass(frozen=True)
class Read:
    documented: str  # the path as in /openapi.json
    url: str  # the concrete URL, {m} = the marker
    seed: Callable[[Api, str], Awaitable[None]] | None  # None: nothing quick to store
    listing: bool = False  # True: b gets 200 without a's items; False: b gets 404


READS = [
    Read("/v1/contacts/{identifier}", "/v1/contacts/{m}@example.com", seed_event),
    Read("/v1/events", "/v1/events?contact={m}@example.com", seed_event),
    Read("/v1/events", "/v1/events?limit=1000", seed_event, listing=True),
    Read("/v1/orders/{externalOrderId}", "/v1/orders/{m}", seed_order),
    Read("/v1/carts/{recycleStateId}", "/v1/carts/{m}", seed_cart),
    Read("/v1/products/{productId}", "/v1/products/{m}", seed_product),
    Read("/v1/triggers", "/v1/triggers?limit=1000", seed_order, listing=True),  # order triggers
    Read("/v1/triggers", "/v1/triggers?before=&limit=1000", seed_order, listing=True),
    Read("/v1/webhooks/dead", "/v1/webhooks/dead", None, listing=True),
    Read("/v1/webhooks", "/v1/webhooks", None, listing=True),  # test_trigger_deliveries.py too
    Read("/v1/destinations/dead", "/v1/destinations/dead", None, listing=True),
    Read("/v1/triggers/stats", "/v1/triggers/stats", None, listing=True),
    Read("/v1/debug/events", "/v1/debug/events?limit=1000", seed_event, listing=True),
    Read("/v1/stats/events", "/v1/stats/events?minutes=2", seed_event_type, listing=True),
    Read("/v1/contacts/{identifier}/export", "/v1/contacts/{m}@example.com/export", seed_event),
    Read("/v1/contacts/{identifier}/orders", "/v1/contacts/{m}@example.com/orders", seed_order),
    # another tenant's erasure id: test_privacy_erasure.py
    Read("/v1/erasures/{erasure}", "/v1/erasures/{m}", None),
]


def test_every_documented_read_has_an_isolation_case() -> None:
    # Those that take a key; the rest (probes, the tracker script) hold no tenant's data.
    documented = {
        path for path, ops in build()["paths"].items() if ops.get("get", {}).get("security")
    }
    assert "/healthz" not in documented and "/js/tracker.js" not in documented
    assert documented == {r.documented for r in READS}


@pytest.mark.parametrize("read", READS, ids=lambda r: r.url)
async def test_other_tenants_and_site_keys_read_nothing(make_api, read: Read) -> None:
    a, b = await make_api()
    marker = unique("iso")
    url = read.url.format(m=marker)
    if read.seed is not None:
        await read.seed(a, marker)
        mine = await a.get(url)
        assert mine.status_code == 200 and marker in mine.text, mine.text
    theirs = await b.get(url)
    if read.listing:
        assert theirs.status_code == 200 and marker not in theirs.text
    else:
        assert theirs.status_code == 404, theirs.text
    for site_key in (a.site_key, b.site_key):
        response = await a.http.get(url, headers={"authorization": f"Bearer {site_key}"})
        assert response.status_code == 403
        response = await a.http.get(f"{url}{'&' if '?' in url else '?'}key={site_key}")
        assert response.status_code == 403
    assert (await a.http.get(url)).status_code == 401


async def test_tenants_are_isolated(make_api, sync_redis):
    a, b = await make_api()
    assert (await a.event(page("ann"))).status_code == 200
    a_contact = await a.contact("ann@example.com")
    # b's key reads nothing of a: not by email, not by a's contact id, not in the event feed
    for path in (
        "/v1/contacts/ann@example.com",
        f"/v1/contacts/{a_contact['id']}",
        "/v1/events?contact=ann@example.com",
    ):
        assert (await b.get(path)).status_code == 404
    assert (await b.get("/v1/events")).json()["events"] == []
    # the same email at b is a different contact, and a's data is unchanged by it
    assert (await b.event(page("ann"))).status_code == 200
    assert (await b.contact("ann@example.com"))["id"] != a_contact["id"]
    assert len((await a.get("/v1/events?contact=ann@example.com")).json()["events"]) == 1
    # everything stored for a's contact lives under a's prefix
    keys = [k.decode() for k in sync_redis.scan_iter(match=f"*{a_contact['id']}*")]
    assert keys and all(k.startswith(a.keys.prefix + ":") for k in keys)


async def test_orders_are_invisible_to_another_tenant(make_api, sync_redis):
    a, b = await make_api()
    await post_orders(a, order("o-1", status="DELIVERED"))
    assert (await b.get("/v1/orders/o-1")).status_code == 404
    assert (await b.get("/v1/contacts/buyer@example.com")).status_code == 404
    assert triggers(sync_redis, b) == []
    cross = await a.http.get("/v1/orders/o-1", headers=b.server())
    assert cross.status_code == 404


async def test_carts_and_figures_are_invisible_to_another_tenant(make_api):
    a, b = await make_api()
    await a.event(cart_event("rs-1"))
    await post_orders(a, order("o-1", status="DELIVERED", recycleStateId="rs-1"))
    await b.event(cart_event("rs-1"))  # the same recycleStateId in tenant b is b's own
    assert (await b.get("/v1/carts/rs-1")).json()["converted"] is False
    assert (await b.contact("buyer@example.com"))["orders"]["count"] == 0
    assert (await a.http.get("/v1/carts/rs-1", headers=b.server())).json()["converted"] is False
