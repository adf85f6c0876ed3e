"""`GET /v1/contacts/{identifier}/export`: every piece of data held about a contact, as one
document (docs/privacy.md, Export)."""

from __future__ import annotations

from tests.support.orders import cart_event, order, post_orders
from tests.support.triggering import page, product

EMAIL = "buyer@example.com"


async def test_export_holds_profile_cart_views_events_orders_and_triggers(make_api):
    api, _ = await make_api()
    assert (await api.event(product(EMAIL, "P1"))).status_code == 200
    assert (await api.event(cart_event("rs-1"))).status_code == 200
    await post_orders(api, order("o-1", firstName="Ann"), order("o-2", status="DELIVERED"))
    response = await api.get(f"/v1/contacts/{EMAIL}/export")
    assert response.status_code == 200
    body = response.json()
    assert body["identifiers"]["email"] == [EMAIL]
    assert [view["productId"] for view in body["recentProducts"]] == ["P1"]
    assert body["cart"] is None  # bought by o-1
    assert [e["eventTypeKey"] for e in body["events"]] == ["cartUpdated", "productViewed"]
    assert [o["externalOrderId"] for o in body["orders"]] == ["o-1", "o-2"]
    assert body["orders"][0]["order"]["firstName"] == "Ann"
    assert body["orders"][0]["convertedCart"] == "rs-1"
    assert body["rfm"]["count"] == 1
    kinds = {t["type"] for t in body["triggers"]}
    assert kinds >= {"orderINITIALIZED", "orderDELIVERED"}
    assert all(t["contact"]["id"] == body["id"] for t in body["triggers"])


async def test_export_of_an_unknown_or_foreign_contact_is_404_and_a_site_key_403(make_api):
    api, other = await make_api()
    assert (await api.event(page(EMAIL))).status_code == 200
    assert (await other.get(f"/v1/contacts/{EMAIL}/export")).status_code == 404
    assert (await api.get("/v1/contacts/nobody@example.com/export")).status_code == 404
    site = await api.http.get(f"/v1/contacts/{EMAIL}/export?key={api.site_key}")
    assert site.status_code == 403


async def test_export_holds_every_event_the_stream_has_and_the_open_visit(make_api):
    """More events than a contact's list names (`contact_events`), some of them sent before its
    two identifiers were stitched together: the export finds all in the stream."""
    api, _ = await make_api(gateway={"contact_events": 5})
    crm_only = page("ignored")
    crm_only["params"].append({"name": "contactId", "value": "crm-9"})
    del crm_only["keyValue"]
    assert (await api.event(crm_only)).status_code == 200
    for n in range(8):
        assert (await api.event(product(EMAIL, f"P{n}"))).status_code == 200
    assert (await api.event(page("someone-else@example.com"))).status_code == 200
    both = page(EMAIL)
    both["params"].append({"name": "contactId", "value": "crm-9"})
    assert (await api.event(both)).status_code == 200
    body = (await api.get(f"/v1/contacts/{EMAIL}/export")).json()
    assert body["identifiers"] == {"contactId": ["crm-9"], "email": [EMAIL]}
    viewed = [e["params"]["product"]["productId"] for e in body["events"][1:-1]]
    assert len(body["events"]) == 10  # newest first: the stitching page view, 8 views, crm-9's
    assert [e["eventTypeKey"] for e in (body["events"][0], body["events"][-1])] == [
        "pageViewed"
    ] * 2
    assert viewed == [f"P{n}" for n in reversed(range(8))]
    assert {e["contactId"] for e in body["events"]} == {body["id"]}
    visit = body["openVisit"]
    assert visit["eventsByType"] == {"pageViewed": 2, "productViewed": 8}
    assert visit["events"] == 10
    assert visit["startedAt"] <= visit["lastEventAt"]
