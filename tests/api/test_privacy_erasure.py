"""`DELETE /v1/contacts/{identifier}` and `GET /v1/erasures/{id}` (docs/privacy.md, Erasure):
after an erasure no API answers any identifier value of the contact, and no key of the tenant
holds one."""

from __future__ import annotations

from typing import Any

from gateway.redis.arguments import EraseChunk, EraseClaim, EraseStart
from gateway.redis.keys import TenantKeys
from tests.support.esputnik import destination
from tests.support.gateways import free_port, unique
from tests.support.orders import cart_event, order, post_orders
from tests.support.privacy import erase, tenant_dump
from tests.support.triggering import TIMEOUT, page, product
from tests.support.waiting import wait_for

EMAIL = "buyer@example.com"
PHONE = "+380501112233"
VISITOR = "visitor-erased-1"
VALUES = (EMAIL, PHONE, VISITOR, "Buyer-Lastname", "Erased Street 1")


def hooks() -> list[dict[str, Any]]:
    """Two webhooks nobody answers: one keeps its jobs scheduled, one dead-letters at once."""
    dead_port = f"http://127.0.0.1:{free_port()}/hook"
    return [
        {"url": dead_port, "secret": "whsec_test_secret", "retry_initial_seconds": 600},
        {
            "url": dead_port + "2",
            "secret": "whsec_test_secret",
            "timeout_seconds": 0.05,
            "retry_initial_seconds": 0.01,
            "retry_budget_seconds": 0.1,
        },
    ]


def destinations() -> list[dict[str, Any]]:
    """Two eSputnik destinations nobody answers: one keeps its jobs queued, one dead-letters."""
    url = f"http://127.0.0.1:{free_port()}/api"
    return [
        destination(url, timeout_seconds=0.05),
        destination(url + "2", timeout_seconds=0.05, max_attempt_seconds=0.1),
    ]


async def seed_contact(api: Any) -> None:
    """An anonymous visitor who logs in (stitched), a cart, an order, and visits' triggers."""
    anonymous = {**product(VISITOR, "P1"), "keyValue": None, "visitorId": VISITOR}
    assert (await api.event(anonymous)).status_code == 200
    login = page(EMAIL, visitorId=VISITOR)
    login["params"].append({"name": "phone", "value": PHONE})
    reply = await api.event(login)
    assert reply.status_code == 200, reply.text
    assert (await api.event(cart_event("rs-erased", EMAIL))).status_code == 200
    await post_orders(
        api,
        order("o-erased", lastName="Buyer-Lastname", deliveryAddress="Erased Street 1"),
        order("o-kept", email="kept@example.com"),
    )
    assert (await api.event(product(EMAIL, "P2"))).status_code == 200
    assert (await api.event(page("kept@example.com"))).status_code == 200


async def test_after_an_erasure_no_api_and_no_key_holds_an_identifier_value(make_api, sync_redis):
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT, webhooks=hooks(), destinations=destinations()
    )
    await seed_contact(api)

    async def settled() -> bool:
        dead = (await api.get("/v1/webhooks/dead")).json()["dead"]
        forwarded = (await api.get("/v1/destinations/dead?limit=1000")).text
        # the two orders' triggers; the contact's events and order at the second destination
        return len(dead) >= 2 and EMAIL in forwarded and PHONE in forwarded

    await wait_for(settled, 30, "triggers dead-lettered")
    # a refused request naming the contact, in the debug log
    refused = await api.event({"eventTypeKey": "pageViewed", "keyValue": EMAIL.upper()})
    assert refused.status_code == 400

    async def logged() -> bool:
        return EMAIL.upper() in (await api.get("/v1/debug/events?limit=1000")).text

    await wait_for(logged, 30, "the refused request in the debug log")
    dump = "\n".join(tenant_dump(sync_redis, api).values())
    assert all(value in dump for value in VALUES)  # there to be found before

    answer = await erase(api, EMAIL)
    counts = answer["counts"]
    assert counts["identifiers"] == 3
    assert counts["orders"] == 1
    assert counts["events"] == 4
    assert counts["triggers"] >= 1
    assert counts["deadLetters"] >= 1
    assert counts["webhookJobs"] >= 1
    assert counts["profile"] == 1
    assert counts["refusedRequests"] == 1
    # its three events that name it and its order wait at the first destination (its retries
    # never end here; the anonymous view is forwarded with no identifier of it); at the second,
    # those not yet dead-lettered wait too (the key scan below finds none left)
    assert counts["destinationJobs"] >= 4
    assert counts["destinationDeadLetters"] >= 1

    texts = []
    for path in (
        "/v1/events",
        "/v1/events?limit=1000",
        "/v1/triggers",
        "/v1/webhooks/dead",
        "/v1/orders/o-erased",
        "/v1/orders/o-kept",
        "/v1/debug/events?limit=1000",
        "/v1/destinations/dead?limit=1000",
    ):
        response = await api.get(path)
        assert response.status_code == 200, path
        texts.append(response.text)
    for value in (EMAIL, PHONE, VISITOR):
        for path in (f"/v1/contacts/{value}", f"/v1/contacts/{value}/export"):
            assert (await api.get(path)).status_code == 404
        assert (await api.get(f"/v1/events?contact={value}")).status_code == 404
    for value in VALUES:
        assert not [text for text in texts if value.lower() in text.lower()], value
    erased_order = (await api.get("/v1/orders/o-erased")).json()
    assert erased_order["order"]["totalCost"] == 100
    assert erased_order["contactId"] is None
    # the other contact and its order are untouched
    assert (await api.contact("kept@example.com"))["identifiers"] == {"email": ["kept@example.com"]}
    assert "kept@example.com" in texts[0]

    dump = tenant_dump(sync_redis, api)
    for value in VALUES:
        holding = [key for key, text in dump.items() if value.lower() in text.lower()]
        assert not holding, f"{value} still in {holding}"
    # the trigger stream was rewritten without the erased entries, the webhooks' groups kept
    assert len(sync_redis.xinfo_groups(api.keys.triggers)) == 2


async def test_a_second_erasure_and_a_foreign_or_unknown_contact_are_404(make_api):
    api, other = await make_api()
    assert (await api.event(page(EMAIL))).status_code == 200
    foreign = await other.http.delete(f"/v1/contacts/{EMAIL}", headers=other.server())
    assert foreign.status_code == 404
    site = await api.http.delete(f"/v1/contacts/{EMAIL}?key={api.site_key}")
    assert site.status_code == 403
    first = await erase(api, EMAIL)
    assert first["counts"]["events"] == 1
    again = await api.http.delete(f"/v1/contacts/{EMAIL}", headers=api.server())
    assert again.status_code == 404
    assert again.json()["error"] == "not_found"
    for erasure in ("0123456789abcdef", "nope", first["erasure"] + "0"):
        assert (await api.get(f"/v1/erasures/{erasure}")).status_code == 404
    assert (await other.get(f"/v1/erasures/{first['erasure']}")).status_code == 404
    # the identifier is free again: a new event makes a new contact
    assert (await api.event(page(EMAIL))).status_code == 200
    assert (await api.contact(EMAIL))["identifiers"] == {"email": [EMAIL]}


async def test_a_stitched_contact_is_erased_whole(make_api, sync_redis):
    api, _ = await make_api()
    # The first contact's event holds its email only as sent (spaces, capitals): it is found by
    # its contact, which was stitched into the second.
    first = page("seen-first", params=[])
    first["params"] = [
        {"name": "page", "value": '{"location":"https://shop.example/"}'},
        {"name": "Email", "value": "  Ann@Example.COM "},
    ]
    del first["keyValue"]
    assert (await api.event(first)).status_code == 200
    second = page("ignored")
    second["params"].append({"name": "contactId", "value": "crm-77"})
    del second["keyValue"]
    assert (await api.event(second)).status_code == 200
    both = page("ann@example.com")
    both["params"].append({"name": "contactId", "value": "crm-77"})
    assert (await api.event(both)).status_code == 200
    contact = await api.contact("ann@example.com")
    assert contact["identifiers"] == {"contactId": ["crm-77"], "email": ["ann@example.com"]}

    answer = await erase(api, "crm-77")
    assert answer["counts"]["events"] == 3
    assert answer["counts"]["identifiers"] == 2
    for value in ("ann@example.com", "crm-77"):
        assert (await api.get(f"/v1/contacts/{value}")).status_code == 404
    assert (await api.get("/v1/events")).json()["events"] == []
    dump = "\n".join(tenant_dump(sync_redis, api).values()).lower()
    assert "ann@example.com" not in dump
    assert "crm-77" not in dump


async def test_an_erasure_is_worked_by_one_claimant_at_a_time(api, sync_redis):
    """Two processes' erasers: the second finds nothing to claim while the first's lease runs,
    and a claimant whose lease was taken over is told so and stops (erase.lua)."""
    store, keys = api.gateway.store, TenantKeys.for_tenant(unique("claims"))  # no app's tenant
    sync_redis.hset(keys.contact("c-1"), mapping={"created": 1, "i:email:c1@example.com": 1})
    now = 1_000_000
    assert await store.run("erase", EraseStart(keys.prefix, "e1", "c-1", 0, "", ""), now) == [
        b"running"
    ]
    assert await store.run("erase", EraseClaim(keys.prefix, "one", 5000), now) == b"e1"
    assert await store.run("erase", EraseClaim(keys.prefix, "two", 5000), now + 4999) is None
    assert await store.run("erase", EraseClaim(keys.prefix, "two", 5000), now + 5000) == b"e1"
    late = EraseChunk(keys.prefix, "e1", "one", 5000, 500)
    assert await store.run("erase", late, now + 5001) == [b"lost"]
    step = EraseChunk(keys.prefix, "e1", "two", 5000, 500)
    states = [(await store.run("erase", step, now + 5001 + n))[0] for n in range(11)]
    assert (await store.run("erase", step, now + 6000))[0] == b"lost"  # over
    # one call per (empty) step, the last says done, and then there is nothing more to do
    assert states == [b"more"] * 10 + [b"done"]
    assert await store.run("erase", EraseClaim(keys.prefix, "one", 5000), now + 99_999) is None


async def test_a_delayed_trigger_of_the_contact_is_erased(make_api, sync_redis):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT, triggers={"delay_seconds": 60})
    assert (await api.event(product(EMAIL, "P1"))).status_code == 200
    await wait_for(lambda: sync_redis.zcard(api.keys.pending) == 1, 20, "the held trigger")
    answer = await erase(api, EMAIL)
    assert answer["counts"]["pendingTriggers"] == 1
    assert sync_redis.zcard(api.keys.pending) == 0
    assert sync_redis.hlen(api.keys.pending_jobs) == 0
