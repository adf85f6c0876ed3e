"""Trigger policies (docs/triggers.md, Trigger policies): who a trigger can reach, the delay and
its re-check, the suppression reasons, the cooldown."""

from __future__ import annotations

from tests.support.triggering import TIMEOUT, closed, page, product, send


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
