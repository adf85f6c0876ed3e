"""Trigger policies (docs/triggers.md, Trigger policies): who a trigger can reach, the delay and
its re-check, the suppression reasons, the cooldown."""

from __future__ import annotations

from datetime import datetime

from tests.support.gateways import Api
from tests.support.metrics import sample
from tests.support.orders import order, post_orders
from tests.support.triggering import TIMEOUT, cart, closed, page, product, send, triggers
from tests.support.waiting import wait_for


def customer_page(customer: str) -> dict[str, object]:
    """A page view of a visitor the shop knows only by its own customer id."""
    event = page("", visitorId=f"v-{customer}")
    event.pop("keyValue")
    event["params"] = [*event["params"], {"name": "externalCustomerId", "value": customer}]
    return event


async def test_an_external_customer_id_param_makes_a_contact_reachable(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    await send(api, customer_page("C-77"), page("", visitorId="v-anonymous"))
    (trigger,) = await closed(api, 2)
    assert trigger["type"] == "abandonedVisit"
    assert trigger["contact"]["externalCustomerId"] == "C-77"
    assert trigger["contact"]["email"] is None
    assert trigger["contact"]["identifiers"]["externalCustomerId"] == ["C-77"]
    assert api.gateway.metrics.visits_anonymous.get(api.tenant_id) == 1


async def test_an_order_naming_the_customer_makes_its_visitor_reachable(make_api):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT)
    placed = {
        "eventTypeKey": "orderCreated",
        "visitorId": "v-buyer",
        "params": {"externalOrderId": "o-reach", "externalCustomerId": "C-88", "totalCost": 5},
    }
    await send(api, placed)
    await closed(api, 1)  # a visit with an order: nothing abandoned
    await send(api, product("", "P1", visitorId="v-buyer") | {"keyValue": None})
    found = await closed(api, 2)
    (browse,) = [t for t in found if t["type"] == "abandonedBrowse"]
    assert browse["contact"]["externalCustomerId"] == "C-88"
    assert browse["contact"]["identifiers"]["visitorId"] == ["v-buyer"]


DELAY = 4.0  # delay_seconds of the delayed tests: time to act (on a busy machine) before it is due
MUG = [{"productId": "MUG-1", "quantity": 1, "price": 5}]


async def suppressed(api: Api, trigger_type: str, reason: str) -> None:
    metrics = api.gateway.metrics
    await wait_for(
        lambda: metrics.triggers_suppressed.get(api.tenant_id, trigger_type, reason) >= 1,
        20,
        f"a suppressed {trigger_type} ({reason})",
    )


def policy(**values: float) -> dict[str, object]:
    return {"visit_timeout_seconds": TIMEOUT, "triggers": values}


async def test_a_delayed_trigger_is_emitted_when_due_if_it_still_applies(make_api):
    api, _ = await make_api(**policy(delay_seconds=1))
    await send(api, product("late@x.io", "P1"))
    await closed(api, 1)
    assert await triggers(api) == []  # held: due a second after the visit closed
    await wait_for(lambda: triggers(api), 20, "the delayed trigger")
    (trigger,) = await triggers(api)
    assert trigger["type"] == "abandonedBrowse"
    ended = datetime.fromisoformat(trigger["visit"]["endedAt"])
    created = datetime.fromisoformat(trigger["createdAt"])
    assert (created - ended).total_seconds() >= TIMEOUT + 1
    assert [p["productId"] for p in trigger["products"]] == ["P1"]


async def test_an_order_after_the_visit_suppresses_its_delayed_trigger(make_api):
    api, _ = await make_api(**policy(delay_seconds=DELAY))
    await send(api, product("buyer@example.com", "P1"))
    await closed(api, 1)
    await post_orders(api, order("o-after"))  # buyer@example.com, before the trigger is due
    await suppressed(api, "abandonedBrowse", "ordered")
    assert [t["type"] for t in await triggers(api)] == ["orderINITIALIZED"]


async def test_a_cart_bought_meanwhile_suppresses_its_delayed_trigger(make_api):
    api, _ = await make_api(**policy(delay_seconds=DELAY))
    await send(api, cart("ann@x.io", "rs-bought", MUG))
    await closed(api, 1)
    # another contact (the shop's back-end, another email) buys the same cart state
    await post_orders(api, order("o-cart", email="payer@x.io", recycleStateId="rs-bought"))
    await suppressed(api, "abandonedCart", "converted")
    assert [t["type"] for t in await triggers(api)] == ["orderINITIALIZED"]


async def test_a_contact_back_before_the_delay_suppresses_the_older_trigger(make_api):
    api, _ = await make_api(**policy(delay_seconds=DELAY))
    await send(api, product("back@x.io", "P1"))
    await closed(api, 1)
    await send(api, page("back@x.io"))  # a new visit: it decides
    await suppressed(api, "abandonedBrowse", "returned")
    await wait_for(lambda: triggers(api), 20, "the new visit's trigger")
    assert [t["type"] for t in await triggers(api)] == ["abandonedVisit"]


async def test_a_cooldown_holds_back_a_second_trigger_of_a_type_not_carts(make_api):
    api, _ = await make_api(**policy(cooldown_seconds=3600))
    await send(api, page("often@x.io"), cart("often@x.io", "rs-1", MUG))
    await closed(api, 1)
    await send(api, page("often@x.io"))
    await closed(api, 2)
    await send(api, page("often@x.io"), cart("often@x.io", "rs-2", MUG))
    await closed(api, 3)
    await send(api, page("often@x.io"))
    await suppressed(api, "abandonedVisit", "cooldown")
    found = [t["type"] for t in await triggers(api)]
    # abandonedCart stays once per recycleStateId: a new cart is reported within the cooldown
    assert found == ["abandonedCart", "abandonedVisit", "abandonedCart"]
    body = (await api.http.get("/metrics")).text
    labels = {"tenant": api.tenant_id, "type": "abandonedVisit", "reason": "cooldown"}
    assert sample(body, "gateway_triggers_suppressed_total", **labels) == 1


async def test_a_recent_order_suppresses_an_abandonment_trigger(make_api):
    api, _ = await make_api(**policy(suppress_after_order_seconds=3600))
    await post_orders(api, order("o-before"))
    await send(api, product("buyer@example.com", "P1"), product("other@x.io", "P1"))
    await suppressed(api, "abandonedBrowse", "recentOrder")
    await closed(api, 2)
    found = [(t["type"], t["contact"]["email"]) for t in await triggers(api)]
    assert found == [("orderINITIALIZED", "buyer@example.com"), ("abandonedBrowse", "other@x.io")]
