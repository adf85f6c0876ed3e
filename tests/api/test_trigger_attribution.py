"""Attribution (docs/triggers.md, Attribution): an order soon after a trigger reached its contact
is attributed to one trigger and told to consumers as a triggerConverted trigger."""

from __future__ import annotations

import json

from tests.support.metrics import sample
from tests.support.orders import order, post_orders
from tests.support.triggering import TIMEOUT, cart, closed, page, product, send, triggers
from tests.support.waiting import wait_for

MUG = [{"productId": "MUG-1", "quantity": 1, "price": 5}]
BUYER = "buyer@example.com"  # the email of tests/support/orders.py's orders


async def converted(api, count: int = 1) -> list[dict[str, object]]:
    async def found() -> list[dict[str, object]]:
        return await triggers(api, type="triggerConverted")

    await wait_for(lambda: found_count(found, count), 10, f"{count} triggerConverted")
    return await found()


async def found_count(found, count: int) -> bool:
    return len(await found()) >= count


async def test_an_order_after_a_trigger_is_attributed_to_it(make_api, receiver):
    hook = {"url": receiver.url, "secret": "whsec_attr", "types": ["triggerConverted"]}
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT, webhooks=[hook])
    await send(api, product(BUYER, "P1"))
    (browse,) = await closed(api, 1)
    await post_orders(api, order("o-1", totalCost=12.5, currency="USD"))
    (trigger,) = await converted(api)
    assert trigger["trigger"] == {
        "id": browse["id"],
        "type": "abandonedBrowse",
        "createdAt": browse["createdAt"],
    }
    assert trigger["order"] == {
        "externalOrderId": "o-1",
        "totalCost": 12.5,
        "currency": "USD",
        "status": "INITIALIZED",
    }
    assert trigger["contact"]["email"] == BUYER
    assert trigger["tenant"] == api.tenant_id
    await wait_for(lambda: receiver.requests, 10, "the webhook's delivery")
    assert [json.loads(body)["type"] for _, body, _ in receiver.requests] == ["triggerConverted"]
    # a second order, or an update of this one, is no second conversion of anything new
    await post_orders(api, order("o-1", status="DELIVERED", totalCost=12.5, currency="USD"))
    await send(api, page("nobody@x.io"))
    await closed(api, 2)  # a detector pass since: the tally is read into /metrics
    body = (await api.http.get("/metrics")).text
    labels = {"tenant": api.tenant_id, "type": "abandonedBrowse"}
    assert sample(body, "gateway_trigger_conversions_total", **labels) == 1
    assert sample(body, "gateway_trigger_revenue_total", currency="USD", **labels) == 12.5
    assert len(await converted(api)) == 1


async def test_the_cart_an_order_converts_decides_over_the_last_trigger(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(api, cart(BUYER, "rs-attr", MUG))
    await closed(api, 1)
    await send(api, page(BUYER))  # a later visit: an abandonedVisit, the contact's last trigger
    found = await closed(api, 2)
    assert [t["type"] for t in found] == ["abandonedCart", "abandonedVisit"]
    await post_orders(api, order("o-cart", recycleStateId="rs-attr"))
    (trigger,) = await converted(api)
    assert trigger["trigger"]["id"] == found[0]["id"]
    assert trigger["trigger"]["type"] == "abandonedCart"
    assert trigger["order"]["currency"] == "XXX"  # the order named none


async def test_another_tenants_cart_or_an_order_out_of_the_window_attributes_nothing(make_api):
    api, other = await make_api(
        visit_timeout_seconds=TIMEOUT, triggers={"attribution_window_seconds": 60}
    )
    await send(other, cart(BUYER, "rs-theirs", MUG))
    await send(api, product(BUYER, "P1"))
    await closed(api, 1)
    await closed(other, 1)  # an abandonedCart of rs-theirs in the other tenant
    # the order names a cart state of the other tenant: nothing of this tenant converts
    await post_orders(api, order("o-foreign", recycleStateId="rs-theirs"))
    narrow, _ = await make_api(
        visit_timeout_seconds=TIMEOUT, triggers={"attribution_window_seconds": 0}
    )
    await send(narrow, product(BUYER, "P1"))
    await closed(narrow, 1)
    await post_orders(narrow, order("o-late"))
    await post_orders(api, order("o-marker", email="marker@x.io"))  # last in the stream
    await wait_for(lambda: stream_has(api, "orderINITIALIZED", 2), 10, "both orders of the tenant")
    assert await triggers(api, type="triggerConverted") == []
    assert await triggers(narrow, type="triggerConverted") == []
    assert await triggers(other, type="triggerConverted") == []


async def stream_has(api, trigger_type: str, count: int) -> bool:
    return len(await triggers(api, type=trigger_type)) >= count
