"""The ingest micro-batcher: concurrent requests share Redis round trips, never their answers."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.support.events import good, viewed
from tests.support.triggering import open_visit


async def test_concurrent_requests_in_one_batch_each_get_their_own_answer(api, sync_redis):
    bad = {3: viewed("bad3@example.com", None, "bad-3"), 7: viewed("bad7@example.com", "{x", "b7")}
    bodies = [bad.get(n, good(n)) for n in range(12)]
    batcher = api.gateway.batcher
    flushed: list[int] = []
    execute = batcher._execute

    async def counting(calls: list[Any]) -> list[Any]:
        flushed.append(len(calls))
        return await execute(calls)

    batcher._execute = counting  # type: ignore[method-assign]
    try:
        answers = await asyncio.gather(*(api.event(body) for body in bodies))
    finally:
        batcher._execute = execute  # type: ignore[method-assign]
    # the ten good requests reached Redis in fewer script calls than requests
    assert 0 < sum(flushed) < 10
    for n, answer in enumerate(answers):
        if n in bad:
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"].startswith("params.product")
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"status": "accepted", "eventId": f"good-{n}"}
    for n in range(12):
        if n not in bad:
            contact = await api.contact(f"buyer{n}@example.com")
            assert [p["productId"] for p in contact["recentProducts"]] == [f"P{n}"]
    for n in bad:
        assert (await api.get(f"/v1/contacts/bad{n}@example.com")).status_code == 404
    assert sync_redis.xlen(api.keys.events) == 10


async def test_a_batch_request_among_single_ones_gets_its_own_counts(api):
    batch = [good(100), viewed("x@example.com", None, "bad-batch"), good(101)]
    single, many = await asyncio.gather(api.event(good(102)), api.events(batch))
    assert single.json() == {"status": "accepted", "eventId": "good-102"}
    body = many.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [f["index"] for f in body["failed"]] == [1]


async def test_the_same_event_id_twice_in_one_batch_is_stored_once(api, sync_redis):
    first, second = await asyncio.gather(api.event(good(200)), api.event(good(200)))
    assert sorted([first.json()["status"], second.json()["status"]]) == ["accepted", "duplicate"]
    assert sync_redis.xlen(api.keys.events) == 1


def history(email: str, tag: str) -> list[dict[str, Any]]:
    """One visitor's queued events: views (one product twice), a custom event, a repeated
    eventId, and a cart in the middle, which ends a run of history-only events in ingest.lua."""

    def event(kind: str, n: int, *params: tuple[str, Any]) -> dict[str, Any]:
        named = [{"name": "email", "value": email}, *({"name": k, "value": v} for k, v in params)]
        return {"eventTypeKey": kind, "eventId": f"{tag}-{n}", "params": named}

    def product(sku: str) -> tuple[str, str]:
        return ("product", orjson.dumps({"productId": sku, "price": 10}).decode())

    cart = orjson.dumps([{"productId": "B", "quantity": 1, "price": 10}]).decode()
    return [
        event("pageViewed", 0, ("page", '{"location": "https://shop.example/"}')),
        event("productViewed", 1, product("A")),
        event("productViewed", 2, product("B")),
        event("productViewed", 1, product("A")),  # a re-sent event: a duplicate
        event("productCategoryViewed", 3, ("category", '{"productCategoryId": "C1"}')),
        event("wishlistOpened", 4),
        event("cartUpdated", 5, ("products", cart), ("recycleStateId", f"{tag}-rs")),
        event("productViewed", 6, product("A")),
        event("productViewed", 7, product("C")),
    ]


async def test_one_batch_of_a_contacts_events_stores_what_one_by_one_does(api, sync_redis):
    one_by_one = [await api.event(body) for body in history("solo@example.com", "solo")]
    assert [r.json()["status"] for r in one_by_one].count("duplicate") == 1
    answer = await api.events(history("batch@example.com", "batch"))
    assert answer.json() == {"accepted": 8, "duplicates": 1, "failed": []}

    async def stored(email: str) -> dict[str, Any]:
        contact = await api.contact(email)
        listed = await api.get(f"/v1/events?contact={email}&limit=50")
        assert listed.status_code == 200, listed.text
        cid = contact["id"]
        visit = open_visit(sync_redis, api, cid)
        return {
            # one batch shares one receive time: its views tie, and ties have no recency order
            "products": sorted(p["productId"] for p in contact["recentProducts"]),
            "categories": [c["productCategoryId"] for c in contact["recentCategories"]],
            "cart": [p["productId"] for p in contact["cart"]["products"]],
            "events": [e["eventTypeKey"] for e in listed.json()["events"]],
            "visit": {k: v for k, v in visit.items() if k not in (b"start", b"last")},
            "ttls": sorted(
                sync_redis.ttl(key) > 0 for key in sync_redis.scan_iter(api.keys.contact(cid) + "*")
            ),
        }

    solo, batch = await stored("solo@example.com"), await stored("batch@example.com")
    assert batch == solo
    assert batch["products"] == ["A", "B", "C"]
    assert batch["visit"][b"n"] == b"8"
    assert all(batch["ttls"])


async def test_events_whose_identifiers_join_alike_are_two_contacts(api):
    # ingest.lua keeps a run of one contact's events: ["email:x", "email:b"] (a param and the
    # keyValue) and the one identifier "email:x\nemail:b" (a keyValue with a line break) join to
    # the same text, yet they name two contacts.
    two = {"eventTypeKey": "pageViewed", "keyValue": "b@example.com"}
    two["params"] = [
        {"name": "email", "value": "x@example.com"},
        {"name": "page", "value": '{"location": "https://shop.example/"}'},
    ]
    one = {**two, "keyValue": "x@example.com\nemail:b@example.com"}
    one["params"] = two["params"][1:]
    answer = await api.events([two, one])
    assert answer.json() == {"accepted": 2, "duplicates": 0, "failed": []}
    listed = (await api.get("/v1/events?limit=10")).json()["events"]
    assert [e["keyValue"] for e in listed] == [one["keyValue"], two["keyValue"]]
    assert listed[0]["contactId"] != listed[1]["contactId"]


async def test_events_are_stored_after_redis_lost_its_script_cache(api, sync_redis):
    # what a Redis restart without persistence of scripts looks like to the batcher: NOSCRIPT
    assert (await api.event(good(200))).status_code == 200
    sync_redis.script_flush()
    answers = await asyncio.gather(api.event(good(201)), api.events([good(202), good(203)]))
    assert answers[0].json() == {"status": "accepted", "eventId": "good-201"}
    assert answers[1].json() == {"accepted": 2, "duplicates": 0, "failed": []}
    assert sync_redis.xlen(api.keys.events) == 4
    assert (await api.event(good(204))).status_code == 200  # the script is cached again
