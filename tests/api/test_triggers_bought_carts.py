"""No abandonedCart for a bought cart: by recycleStateId, or by the purchase window.

The contract: docs/api.md, Carts bought; docs/triggers.md, Orders and visits.
"""

from __future__ import annotations

from tests.support.orders import cart_event, event, order, post_orders
from tests.support.triggering import SPANNING, TIMEOUT, closed, product, send


def abandoned(found: list[dict[str, object]]) -> list[object]:
    return [t["type"] for t in found if str(t["type"]).startswith("abandoned")]


async def test_no_trigger_for_a_cart_bought_by_its_recycle_state_id(make_api):
    api, _ = await make_api(visit_timeout_seconds=SPANNING)
    await send(api, product("buyer@example.com", "WS01"), cart_event("rs-bought"))
    await post_orders(api, order("o-1", recycleStateId="rs-bought"))
    found = await closed(api, 1)
    assert abandoned(found) == []
    assert [t["type"] for t in found] == ["orderINITIALIZED"]
    assert api.gateway.metrics.triggers_emitted.get(api.tenant_id, "orderINITIALIZED") == 1


async def test_no_trigger_for_a_cart_bought_within_the_purchase_window(make_api):
    api, _ = await make_api(visit_timeout_seconds=SPANNING, cart_purchase_window_seconds=60)
    await send(api, cart_event("rs-window"))
    await post_orders(api, order("o-2"))  # no recycleStateId: the window links it
    assert abandoned(await closed(api, 1)) == []


async def test_no_trigger_when_an_order_event_buys_the_cart_in_the_visit(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    buy = event(
        "orderCreated",
        externalOrderId="o-3",
        status="INITIALIZED",
        totalCost="45.5",
        date="2024-05-14T10:11:00",
        email="buyer@example.com",
        recycleStateId="rs-event",
    )
    await send(api, product("buyer@example.com", "WS01"), cart_event("rs-event"), buy)
    assert abandoned(await closed(api, 1)) == []


async def test_a_cancelled_order_buys_nothing(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(api, cart_event("rs-cancel"))
    await post_orders(api, order("o-4", status="CANCELLED", recycleStateId="rs-cancel"))
    assert abandoned(await closed(api, 1)) == ["abandonedCart"]


async def test_no_trigger_for_a_cart_whose_order_came_first(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await post_orders(api, order("o-5", recycleStateId="rs-late"))
    await send(api, cart_event("rs-late"))  # the cart's beacon, later than the order
    assert abandoned(await closed(api, 1)) == []
