"""`DELETE /v1/contacts/{identifier}` and `GET /v1/erasures/{id}` (docs/privacy.md, Erasure):
after an erasure no API answers any identifier value of the contact, and no key of the tenant
holds one."""

from __future__ import annotations

from typing import Any

import redis

from gateway.redis.arguments import EraseChunk, EraseClaim, EraseStart, FanoutStep
from gateway.redis.keys import TenantKeys
from tests.support.esputnik import destination
from tests.support.gateways import Api, free_port, unique
from tests.support.orders import cart_event, order, post_orders
from tests.support.privacy import erase, holding, tenant_dump
from tests.support.products import seen, watchers
from tests.support.triggering import TIMEOUT, cart, open_visit, page, product, send
from tests.support.waiting import wait_for

EMAIL = "buyer@example.com"
PHONE = "+380501112233"
VISITOR = "visitor-erased-1"
VALUES = (EMAIL, PHONE, VISITOR, "Buyer-Lastname", "Erased Street 1")
LONG_VISIT = 3600.0  # visit_timeout_seconds: the contact's visit is still open when it is erased


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
    # a client's eventId: its duplicate mark stays after the erasure, holding nothing of it
    assert (await api.event(product(EMAIL, "P2", eventId="ev-erased-P2"))).status_code == 200
    assert (await api.event(page("kept@example.com"))).status_code == 200


def contact_ids(client: Any, api: Api, contact_id: str) -> list[str]:
    """The contact's id and those of the contacts stitched into it."""
    stitched = client.smembers(api.keys.contact(contact_id, ":from"))
    return [contact_id, *sorted(member.decode() for member in stitched)]


def assert_nothing_left(client: Any, api: Api, contact_id: str, needles: list[str]) -> None:
    """No key of the tenant holds a needle (an identifier value or contact id) in its name or
    value, and the contact's visit is closed: no member of the visits set, no `v:` field."""
    left = holding(tenant_dump(client, api), needles)
    assert not left, f"still held: {left}"
    assert client.zscore(api.keys.visits, contact_id) is None
    assert open_visit(client, api, contact_id) == {}


async def test_after_an_erasure_no_api_and_no_key_holds_an_identifier_value(make_api, sync_redis):
    api, _ = await make_api(
        visit_timeout_seconds=LONG_VISIT, webhooks=hooks(), destinations=destinations()
    )
    await seed_contact(api)
    contact_id = (await api.contact(EMAIL))["id"]
    ids = contact_ids(sync_redis, api, contact_id)

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
    dump = tenant_dump(sync_redis, api)
    assert holding(dump, [*VALUES, contact_id]).keys() == {*VALUES, contact_id}  # found before
    assert holding(dump, [api.keys.identifier("email", EMAIL)])  # an index key, by its name
    for product_id in ("WS01", "P2"):
        assert watchers(sync_redis, api, product_id) == [contact_id]
    assert sync_redis.zscore(api.keys.visits, contact_id) is not None
    assert open_visit(sync_redis, api, contact_id)
    mark = api.keys.dedup("ev-erased-P2")
    assert sync_redis.get(mark) == b"1"
    sync_redis.set(mark, contact_id, keepttl=True)  # as earlier gateways wrote it

    answer = await erase(api, EMAIL)
    assert sync_redis.get(mark) == b"1" and sync_redis.ttl(mark) > 0  # a retry stays a duplicate
    counts = answer["counts"]
    assert counts["identifiers"] == 3
    assert counts["orders"] == 1
    assert counts["events"] == 4
    assert counts["triggers"] >= 1
    assert counts["deadLetters"] >= 1
    assert counts["webhookJobs"] >= 1
    assert counts["profile"] == 1
    assert counts["visits"] == 1
    assert counts["productWatches"] == 2  # WS01 of its cart, P2 viewed (P1 when anonymous)
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

    assert_nothing_left(sync_redis, api, contact_id, [*VALUES, *ids])
    # the trigger stream was rewritten without the erased entries, the webhooks' groups kept
    assert len(sync_redis.xinfo_groups(api.keys.triggers)) == 2


async def test_cart_states_and_watches_whose_events_left_the_stream_are_erased(
    make_api, sync_redis
):
    """An older cart's state and a watch that nothing left of the contact names any more: its
    events pushed out of the stream, its view out of its recent views, the cart no longer
    current. Only the key walks of the background work find them (docs/privacy.md)."""
    cap = 1000  # events_stream_maxlen's least value
    api, _ = await make_api(
        gateway={"events_stream_maxlen": cap, "recent_views": 1}, visit_timeout_seconds=LONG_VISIT
    )
    who = "old-carts@example.com"
    mug = [{"productId": "MUG", "quantity": 1, "price": 20}]
    lamp = [{"productId": "LAMP", "quantity": 1, "price": 30}]
    await send(api, cart(who, "rs-old", mug), seen(who, "VASE"))
    await send(api, seen(who, "WOK"), cart(who, "rs-new", lamp))  # WOK > VASE at a tie
    contact_id = (await api.contact(who))["id"]
    for batch in range(3):
        await send(api, *[page(f"other-{batch}-{n % 7}@example.com") for n in range(cap // 2)])
    dump = tenant_dump(sync_redis, api)
    assert holding(dump, [who, contact_id]).keys() == {who, contact_id}
    assert (await api.get(f"/v1/events?contact={who}")).json()["events"] == []  # pushed out
    # the old cart's state holds it (with the cart's JSON), as do the watches of MUG and VASE
    assert sync_redis.hget(api.keys.cart("rs-old"), "contact").decode() == contact_id
    assert b"MUG" in sync_redis.hget(api.keys.cart("rs-old"), "cart")
    for product_id in ("MUG", "VASE", "WOK", "LAMP"):
        assert watchers(sync_redis, api, product_id) == [contact_id]
    assert sync_redis.zscore(api.keys.contact(contact_id, ":pv"), "VASE") is None

    counts = (await erase(api, who))["counts"]
    assert counts.get("events", 0) == 0  # a kind none of which was found is left out
    assert counts["carts"] == 2  # the current one at once, the older one by the walk
    assert counts["productWatches"] == 4
    assert counts["visits"] == 1
    assert not sync_redis.exists(api.keys.cart("rs-old"))
    assert_nothing_left(sync_redis, api, contact_id, [who, contact_id])
    assert (await api.contact("other-0-0@example.com"))["id"]  # the others untouched


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
    states = [b"more"]
    while states[-1] == b"more" and len(states) < 10_000:
        states.append((await store.run("erase", step, now + 5001))[0])
    assert (await store.run("erase", step, now + 6000))[0] == b"lost"  # over
    # at least one call per (empty) step (the key walks take one per `count` slots of the
    # server's keys), the last says done, and then there is nothing more to do
    assert states[-1] == b"done"
    assert len(states) - 1 >= 13
    assert await store.run("erase", EraseClaim(keys.prefix, "one", 5000), now + 99_999) is None


CARTS_WALK = 6  # erase.lua STEPS: the walk over the tenant's cart states


def cursor_past(client: Any, pattern: str) -> int:
    """A SCAN cursor of the server holding `pattern`'s keys from which SCAN no longer returns
    the first of them it finds (COUNT 1: about one hash-table bucket per call)."""
    node = client
    if isinstance(client, redis.RedisCluster):
        serving = client.get_node_from_key(pattern)
        node = redis.Redis(host=serving.host, port=serving.port)
    try:
        cursor = 0
        while True:
            cursor, found = node.scan(cursor, match=pattern, count=1)
            if found or cursor == 0:
                return int(cursor)
    finally:
        if node is not client:
            node.close()


async def test_a_walk_left_at_a_cursor_of_another_redis_run_starts_over(api, sync_redis):
    """A SCAN cursor holds only on the server run that gave it. An erasure whose walk was left at
    a cursor of another run (Redis restarted or failed over since) walks from the start again:
    from that cursor, this run's SCAN would never come back to the first cart state."""
    store, keys = api.gateway.store, TenantKeys.for_tenant(unique("walk"))
    sync_redis.hset(keys.contact("c-1"), mapping={"created": 1})
    states = [keys.cart(f"rs-{n}") for n in range(20)]
    for state in states:
        sync_redis.hset(state, mapping={"contact": "c-1", "at": 1})
    cursor = cursor_past(sync_redis, keys.cart("*"))
    assert cursor != 0  # not all 20 in the table's last bucket
    now = 1_000_000
    assert await store.run("erase", EraseStart(keys.prefix, "e1", "c-1", 0, "", ""), now) == [
        b"running"
    ]
    assert await store.run("erase", EraseClaim(keys.prefix, "w", 5000), now) == b"e1"
    step = EraseChunk(keys.prefix, "e1", "w", 5000, 500)
    record = keys.erasure("e1")
    while int(sync_redis.hget(record, "step")) < CARTS_WALK:
        assert await store.run("erase", step, now) == [b"more"]
    sync_redis.hset(record, "cursor", f"{'0' * 40}:{cursor}")
    while (await store.run("erase", step, now))[0] == b"more":
        pass
    assert sync_redis.exists(*states) == 0
    assert sync_redis.hget(record, "n:carts") == b"20"


async def test_a_fan_out_walking_a_watch_index_goes_on_without_the_erased_contact(api, sync_redis):
    """A fan-out's cursor is the last watcher it looked at (fanout.lua): the erasure takes the
    contact out of it too, and the fan-out goes on with the watchers it had not reached."""
    store, keys = api.gateway.store, TenantKeys.for_tenant(unique("fan"))
    sync_redis.hset(keys.contact("c-1"), mapping={"created": 1})
    index, fanout = keys.product("P1", ":w"), keys.product("P1", ":f")
    # walked from the newest watch: w-5, w-4, then c-1; w-2 and w-1 still to come
    sync_redis.zadd(index, {"w-5": 5, "w-4": 4, "c-1": 3, "w-2": 2, "w-1": 1})
    sync_redis.hset(fanout, mapping={"owner": "token", "score": 3, "member": "c-1"})
    sync_redis.zadd(keys.fanouts, {"P1": 10})
    now = 1_000_000
    await store.run("erase", EraseStart(keys.prefix, "e1", "c-1", 0, "", ""), now)
    await store.run("erase", EraseClaim(keys.prefix, "w", 5000), now)
    step = EraseChunk(keys.prefix, "e1", "w", 5000, 500)
    while (await store.run("erase", step, now))[0] == b"more":
        pass
    assert sync_redis.hget(keys.erasure("e1"), "n:productWatches") == b"1"
    assert b"c-1" not in sync_redis.hgetall(fanout).values()
    assert sync_redis.zscore(index, "c-1") is None
    go_on = FanoutStep(keys.prefix, "token", "P1", 5000, 10, 10**9, 5.0, 0, 86_400)
    # the two it had not reached (none of them saw the product: they leave the index), done
    assert await store.run("fanout", go_on, now) == [b"P1", 2, 1]
    assert sync_redis.zrange(index, 0, -1) == [b"w-4", b"w-5"]


async def test_a_delayed_trigger_of_the_contact_is_erased(make_api, sync_redis):
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT, triggers={"delay_seconds": 60})
    assert (await api.event(product(EMAIL, "P1"))).status_code == 200
    await wait_for(lambda: sync_redis.zcard(api.keys.pending) == 1, 20, "the held trigger")
    answer = await erase(api, EMAIL)
    assert answer["counts"]["pendingTriggers"] == 1
    assert sync_redis.zcard(api.keys.pending) == 0
    assert sync_redis.hlen(api.keys.pending_jobs) == 0
