"""`DELETE /v1/contacts/{identifier}?suppress=true` and `DELETE /v1/suppressions/{identifier}`
(docs/privacy.md, Suppression): later events and orders naming a suppressed identifier are
answered as ignored and store nothing, until the suppression is lifted."""

from __future__ import annotations

from tests.support.metrics import sample
from tests.support.orders import order
from tests.support.privacy import erase, tenant_dump
from tests.support.triggering import page, product
from tests.support.waiting import wait_for

EMAIL = "gone@example.com"
PHONE = "+380507778899"


async def suppressed_contact(api) -> None:
    login = page(EMAIL)
    login["params"].append({"name": "phone", "value": PHONE})
    assert (await api.event(login)).status_code == 200
    await erase(api, EMAIL, "?suppress=true")


async def test_events_of_a_suppressed_contact_are_ignored_and_store_nothing(make_api, sync_redis):
    api, other = await make_api()
    await suppressed_contact(api)
    mixed = page("v-new", visitorId="v-x")  # one suppressed identifier among new ones
    mixed["params"].append({"name": "email", "value": EMAIL})
    for body in (page(EMAIL), product(PHONE, "P1"), mixed):
        reply = await api.event(body)
        assert reply.status_code == 200
        assert reply.json()["status"] == "ignored"
        assert reply.json()["reason"] == "suppressed"
    assert (await api.get(f"/v1/contacts/{EMAIL}")).status_code == 404
    assert (await api.get("/v1/events")).json()["events"] == []
    dump = "\n".join(tenant_dump(sync_redis, api).values())
    assert EMAIL not in dump and PHONE not in dump  # the list holds digests only
    # a batch: the suppressed entries are ignored, the others stored
    batch = [page("kept@example.com"), page(EMAIL), product(PHONE, "P2")]
    answer = (await api.events(batch)).json()
    assert answer["accepted"] == 1
    assert [(e["index"], e["reason"]) for e in answer["ignored"]] == [
        (1, "suppressed"),
        (2, "suppressed"),
    ]
    assert (await api.contact("kept@example.com"))["identifiers"]["email"] == ["kept@example.com"]
    # another tenant's contact with the same email is not suppressed
    assert (await other.event(page(EMAIL))).json()["status"] == "accepted"
    metrics = (await api.http.get("/metrics")).text
    tenant = api.tenant_id
    assert sample(metrics, "gateway_suppressed_ignored_total", tenant=tenant) == 5
    assert sample(metrics, "gateway_suppressions_total", tenant=tenant, action="added") == 1
    assert sample(metrics, "gateway_erasures_started_total", tenant=tenant) == 1


async def test_orders_of_a_suppressed_contact_are_ignored(make_api):
    api, _ = await make_api()
    await suppressed_contact(api)
    orders = [order("o-kept", email="kept@example.com"), order("o-gone", email=EMAIL)]
    reply = await api.http.post("/v1/orders", json={"orders": orders}, headers=api.server())
    assert reply.status_code == 200
    assert reply.json() == {
        "failedOrders": [],
        "ignored": [{"index": 1, "externalOrderId": "o-gone", "reason": "suppressed"}],
    }
    assert (await api.get("/v1/orders/o-gone")).status_code == 404
    assert (await api.get("/v1/orders/o-kept")).status_code == 200
    order_event = {
        "eventTypeKey": "orderCreated",
        "params": [
            {"name": name, "value": str(value)}
            for name, value in order("o-ev", phone=PHONE, email="x@example.com").items()
        ],
    }
    reply = await api.event(order_event)
    assert reply.json()["reason"] == "suppressed", reply.text
    assert (await api.get("/v1/orders/o-ev")).status_code == 404


async def test_lifting_a_suppression_and_bad_input(make_api):
    api, other = await make_api()
    login = page(EMAIL)
    assert (await api.event(login)).status_code == 200
    bad = await api.http.delete(f"/v1/contacts/{EMAIL}?suppress=yes", headers=api.server())
    assert bad.status_code == 400
    assert bad.json()["field"] == "suppress"
    assert (await api.contact(EMAIL))["identifiers"] == {"email": [EMAIL]}  # nothing erased
    await erase(api, EMAIL, "?suppress=true")
    assert (await api.event(page(EMAIL))).json()["status"] == "ignored"
    # another tenant lifts nothing; an identifier never suppressed is 404
    foreign = await other.http.delete(f"/v1/suppressions/{EMAIL}", headers=other.server())
    assert foreign.status_code == 404
    never = await api.http.delete("/v1/suppressions/never@example.com", headers=api.server())
    assert never.status_code == 404
    site = await api.http.delete(f"/v1/suppressions/{EMAIL}?key={api.site_key}")
    assert site.status_code == 403
    lifted = await api.http.delete(f"/v1/suppressions/{EMAIL.upper()}", headers=api.server())
    assert lifted.status_code == 200
    assert lifted.json() == {"lifted": ["email"]}
    assert (await api.event(page(EMAIL))).json()["status"] == "accepted"
    assert (await api.contact(EMAIL))["identifiers"] == {"email": [EMAIL]}
    again = await api.http.delete(f"/v1/suppressions/{EMAIL}", headers=api.server())
    assert again.status_code == 404


async def test_metrics_count_finished_erasures_and_lifted_suppressions(make_api):
    api, other = await make_api()
    login = page(EMAIL)
    login["params"].append({"name": "phone", "value": PHONE})
    assert (await api.event(login)).status_code == 200
    assert (await api.event(page("second@example.com"))).status_code == 200
    await erase(api, EMAIL, "?suppress=true")
    await erase(api, "second@example.com")
    tenant = api.tenant_id

    async def metrics() -> str:
        return (await api.http.get("/metrics")).text

    async def both_done() -> bool:  # the eraser counts once its last chunk has answered
        return sample(await metrics(), "gateway_erasures_done_total", tenant=tenant) == 2

    await wait_for(both_done, 10, "the finished erasures counted")
    for identifier in (EMAIL, PHONE):  # one lift per identifier, each lifting one kind
        lifted = await api.http.delete(f"/v1/suppressions/{identifier}", headers=api.server())
        assert lifted.status_code == 200
    assert (
        await api.http.delete(f"/v1/suppressions/{EMAIL}", headers=api.server())
    ).status_code == 404
    text = await metrics()
    assert sample(text, "gateway_erasures_started_total", tenant=tenant) == 2
    assert sample(text, "gateway_suppressions_total", tenant=tenant, action="added") == 1
    assert sample(text, "gateway_suppressions_total", tenant=tenant, action="lifted") == 2
    assert sample(text, "gateway_erasures_done_total", tenant=other.tenant_id) == 0
