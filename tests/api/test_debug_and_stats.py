"""The live debugger's reads: `GET /v1/debug/events` (accepted events and refused requests merged,
newest first, with a cursor) and `GET /v1/stats/events` (counts per minute), and their bad input
(docs/dashboard.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
import redis

from gateway.redis.keys import REFUSED_MAX, REFUSED_SECONDS, STATS_MINUTES
from tests.support.gateways import Api
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_transports


def view(product_id: str, email: str = "ann@example.com") -> dict[str, Any]:
    product = orjson.dumps({"productId": product_id, "price": 1}).decode()
    return {"eventTypeKey": "productViewed", "keyValue": email, "params": [product_param(product)]}


def product_param(product: str) -> dict[str, str]:
    return {"name": "product", "value": product}


def product_of(item: dict[str, Any]) -> str:
    return str(item["event"]["params"]["product"]["productId"])


async def debug(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/debug/events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refusals(api: Api, count: int) -> list[dict[str, Any]]:
    """The refused items once `count` are logged (the log is written behind the answers)."""
    found: list[dict[str, Any]] = []

    async def logged() -> bool:
        found[:] = (await debug(api, outcome="refused", limit=1000))["items"]
        return len(found) >= count

    await wait_for(logged, what=f"{count} refusals in the log")
    return found


async def test_accepted_and_refused_are_merged_newest_first(api: Api) -> None:
    assert (await api.event(view("P1"))).status_code == 200
    bad = {"eventTypeKey": "has space", "keyValue": "ann@example.com", "note": "x" * 3000}
    refused = await api.event(bad, site=True)
    assert refused.status_code == 400
    (entry,) = await refusals(api, 1)
    assert (await api.event(view("P2"))).status_code == 200

    items = (await debug(api))["items"]
    assert [i["outcome"] for i in items] == ["accepted", "refused", "accepted"]
    assert [product_of(i) for i in (items[0], items[2])] == ["P2", "P1"]
    assert items[0]["eventTypeKey"] == "productViewed"
    assert entry["status"] == 400
    assert entry["error"] == "invalid_field"
    assert entry["field"] == "eventTypeKey"
    assert entry["message"] == refused.json()["message"]
    assert entry["keyKind"] == "site"
    assert entry["origin"] == "https://shop.example"
    assert entry["path"] == "/v1/event"
    # the body's first 2 KB, as sent; never the key
    sent = refused.request.content.decode()  # as the client wrote it (httpx's spacing varies)
    assert len(sent) > 2048 and entry["body"] == sent[:2048]
    assert api.site_key not in str(entry) and api.server_key not in str(entry)


async def test_a_batch_s_refused_events_are_logged_one_by_one(api: Api) -> None:
    answer = await api.events([view("P1"), {"eventTypeKey": "pageViewed"}])
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    (entry,) = await refusals(api, 1)
    assert (entry["index"], entry["error"], entry["keyKind"]) == (1, "missing_identifier", "server")
    assert entry["path"] == "/v1/events"
    assert entry["origin"] is None
    assert entry["status"] == 200  # the request's: its other event was stored
    assert entry["body"] == '{"eventTypeKey":"pageViewed"}'  # the refused event itself


async def test_the_cursor_pages_through_both_without_gaps_or_repeats(api: Api) -> None:
    for n in range(4):
        await api.event(view(f"P{n}"))
        await api.event({"eventTypeKey": "pageViewed"})  # refused: no identifier
    await refusals(api, 4)
    seen: list[str] = []
    after = None
    while True:
        page = await debug(api, limit=3, **({"after": after} if after else {}))
        seen += [i["cursor"] for i in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == 8 and len(set(seen)) == 8
    whole = [i["cursor"] for i in (await debug(api, limit=100))["items"]]
    assert seen == whole
    accepted = (await debug(api, outcome="accepted"))["items"]
    assert {i["outcome"] for i in accepted} == {"accepted"} and len(accepted) == 4


async def test_a_flood_of_refusals_keeps_the_newest_thousand(api: Api) -> None:
    bad = [{"eventTypeKey": "pageViewed", "n": n} for n in range(500)]
    for _ in range(3):  # 1,500 refused events in three requests
        assert (await api.events(bad)).status_code == 200

    async def flooded() -> bool:
        stats = (await api.get("/v1/stats/events", params={"minutes": 2})).json()
        return sum(m["refused"].get("missing_identifier", 0) for m in stats["minutes"]) == 1500

    await wait_for(flooded, what="1,500 refusals counted")
    logged = await refusals(api, REFUSED_MAX)
    assert len(logged) == REFUSED_MAX
    assert logged[0]["index"] == 499  # the newest first


async def test_stats_count_accepted_by_type_and_refused_by_code(api: Api) -> None:
    await api.events([view("P1"), view("P2"), {"eventTypeKey": "myThing", "keyValue": "a@b.c"}])
    await api.event({"eventTypeKey": "pageViewed"})

    async def counted() -> dict[str, Any]:
        body = (await api.get("/v1/stats/events", params={"minutes": 5})).json()
        last = body["minutes"]
        refused = sum(m["refused"].get("missing_identifier", 0) for m in last)
        return body if refused else {}

    await wait_for(counted, what="the refusal counted")
    minutes = (await counted())["minutes"]
    assert len(minutes) == 5
    assert [m["at"] for m in minutes] == sorted(m["at"] for m in minutes)
    assert minutes[-1]["at"].endswith(":00.000Z")
    accepted: dict[str, int] = {}
    for minute in minutes:
        for kind, n in minute["accepted"].items():
            accepted[kind] = accepted.get(kind, 0) + n
    assert accepted == {"productViewed": 2, "myThing": 1}
    # a duplicate is not counted again
    await api.events([{**view("P3"), "eventId": "same"}, {**view("P3"), "eventId": "same"}])
    minutes = (await api.get("/v1/stats/events", params={"minutes": 5})).json()["minutes"]
    assert sum(m["accepted"].get("productViewed", 0) for m in minutes) == 3
    default = (await api.get("/v1/stats/events")).json()["minutes"]
    assert len(default) == 60


@pytest.mark.parametrize("minutes", ["0", "1441", "-1", "x", "", "1.5", "²"])
async def test_minutes_out_of_range_is_a_400_naming_it(api: Api, minutes: str) -> None:
    response = await api.get("/v1/stats/events", params={"minutes": minutes})
    assert response.status_code == 400
    assert response.json()["field"] == "minutes"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "ok"}, "outcome"),
        ({"outcome": ""}, "outcome"),
        ({"after": "123"}, "after"),
        ({"after": "1-0-x"}, "after"),
        ({"after": f"{2**64}-0-a"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"status": "bogus"}, "status"),
        ({"outcome": "accepted", "status": "refused"}, "status"),
    ],
)
async def test_bad_debug_parameters_are_a_400_naming_them(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = await api.get("/v1/debug/events", params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_status_is_a_name_for_the_outcome_filter(api: Api) -> None:
    await api.event(view("P1"))
    await api.event({"eventTypeKey": "pageViewed"})
    await refusals(api, 1)
    for outcome in ("accepted", "refused"):
        items = (await debug(api, status=outcome))["items"]
        assert [item["outcome"] for item in items] == [outcome]


async def test_a_refusal_older_than_a_day_is_not_listed(api: Api, sync_redis: Any) -> None:
    """The log keeps a day: an entry past it is not listed even before refused.lua's next write
    trims it."""
    now = int(time.time() * 1000)
    for back_ms, error in ((REFUSED_SECONDS * 1000 + 60_000, "too_old"), (60_000, "recent")):
        refusal = {"status": 400, "error": error}
        sync_redis.xadd(api.keys.refused, {"r": orjson.dumps(refusal)}, id=f"{now - back_ms}-0")
    items = (await debug(api, outcome="refused"))["items"]
    assert [item["error"] for item in items] == ["recent"]


async def test_a_refusal_costs_at_most_one_command(api: Api, sync_redis: Any) -> None:
    """One script call writes every refusal buffered meanwhile (gateway/redis/refusals.py):
    fewer calls than refusals where they come faster than a call takes. Each call trims the log
    once, and nothing else sends XTRIM, so its count is theirs."""

    def calls() -> int:
        if isinstance(sync_redis, redis.RedisCluster):
            nodes = sync_redis.info("commandstats", target_nodes=redis.RedisCluster.PRIMARIES)
            return sum(int(n.get("cmdstat_xtrim", {}).get("calls", 0)) for n in nodes.values())
        return int(sync_redis.info("commandstats").get("cmdstat_xtrim", {}).get("calls", 0))

    before = calls()
    assert (await api.event({"eventTypeKey": "pageViewed"})).status_code == 400
    await refusals(api, 1)
    assert calls() - before == 1
    before = calls()
    flood = [api.event({"eventTypeKey": "pageViewed", "n": n}) for n in range(300)]
    assert {answer.status_code for answer in await asyncio.gather(*flood)} == {400}
    await refusals(api, 301)
    assert calls() - before <= 300


async def test_both_need_a_server_key(api: Api) -> None:
    for path in ("/v1/debug/events", "/v1/stats/events"):
        site = await api.http.get(f"{path}?key={api.site_key}")
        assert site.status_code == 403
        assert (await api.http.get(path)).status_code == 401


async def test_a_tenant_sees_only_its_own(make_api: Any) -> None:
    a, b = await make_api()
    await a.event({"eventTypeKey": "pageViewed"})
    await refusals(a, 1)
    assert (await debug(b))["items"] == []


async def test_the_log_and_the_counts_expire(api: Api, sync_redis: Any) -> None:
    await api.event(view("P1"))
    await api.event({"eventTypeKey": "pageViewed"})
    await refusals(api, 1)
    log_ttl = sync_redis.ttl(api.keys.refused)
    assert 0 < log_ttl <= REFUSED_SECONDS
    counts = [api.keys.stats(int(time.time()) // 60 - back) for back in (0, 1)]
    ttls = [sync_redis.ttl(key) for key in counts if sync_redis.exists(key)]
    assert ttls and all(0 < ttl <= (STATS_MINUTES + 1) * 60 for ttl in ttls)


async def test_an_accepted_event_and_a_refusal_of_the_same_stream_id_are_both_listed(
    api: Api, sync_redis: Any
) -> None:
    """Each stream numbers its own entries: the same id in both is listed once each, accepted
    first, however the pages fall."""
    at = int(time.time() * 1000) - 5000  # within the log's day
    event = {"eventTypeKey": "helloWorld", "receivedAt": "2026-01-01T00:00:05.000Z"}
    sync_redis.xadd(api.keys.events, {"c": "c1", "e": orjson.dumps(event)}, id=f"{at}-0")
    refusal = {"at": "2026-01-01T00:00:05.000Z", "status": 400, "error": "invalid_json"}
    sync_redis.xadd(api.keys.refused, {"r": orjson.dumps(refusal)}, id=f"{at}-0")
    first = await debug(api, limit=1)
    second = await debug(api, limit=1, after=first["next"])
    rest = await debug(api, limit=1, after=second["next"])
    assert [i["outcome"] for i in first["items"] + second["items"]] == ["accepted", "refused"]
    assert rest == {"items": [], "next": None}


async def test_a_damaged_counts_key_does_not_fail_the_stored_events(
    api: Api, sync_redis: Any
) -> None:
    minute = int(time.time()) // 60
    for key in (api.keys.stats(minute), api.keys.stats(minute + 1)):
        sync_redis.set(key, "not a hash", ex=120)
    answer = await api.event(view("P1"))
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    assert (await debug(api, outcome="accepted"))["items"][0]["eventTypeKey"] == "productViewed"


async def test_refusals_are_answered_while_redis_is_away(
    no_redis: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    http, auth = no_redis
    for _ in range(3):  # the log's writer fails each time, and the next refusal is still answered
        answer = await http.post("/v1/event", json={"eventTypeKey": "bad type"}, headers=auth)
        assert answer.status_code == 400 and answer.json()["field"] == "eventTypeKey"


async def test_a_body_that_is_not_json_is_logged_as_sent(api: Api) -> None:
    answer = await api.http.post(
        "/v1/event", content=b"[1", headers={**api.server(), "content-type": "application/json"}
    )
    assert answer.status_code == 400
    (entry,) = await refusals(api, 1)
    assert (entry["error"], entry["field"], entry["body"]) == ("invalid_json", "body", "[1")
    await api.http.post("/v1/event", content=b"{}", headers={**api.server(), "content-type": "x/y"})
    entries = await refusals(api, 2)  # refused before its body was read: none is logged
    assert entries[0]["error"] == "unsupported_media_type" and entries[0]["body"] == ""


@pytest.mark.parametrize("after", ["0-0-a", "0-0-r", "0-1-r", f"{2**64 - 1}-{2**64 - 1}-a"])
async def test_cursors_at_either_end_are_answered(api: Api, after: str) -> None:
    await api.event(view("P1"))
    await api.event({"eventTypeKey": "pageViewed"})
    await refusals(api, 1)
    found = await debug(api, after=after)
    assert len(found["items"]) == (0 if after.startswith("0-") else 2)
