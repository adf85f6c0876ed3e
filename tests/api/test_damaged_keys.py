"""One bad key does not fail its neighbours: a contact key of the wrong type (WRONGTYPE) fails
that contact's events alone, answered a 500 with an id in the log (one event) or a `failed` entry
(a batch), while the other events of the same script call are stored and answered.

The contract: docs/api.md, Errors.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import orjson
import pytest
from redis.exceptions import ResponseError

from gateway.errors import INTERNAL_ERROR
from gateway.redis.batcher import IngestBatcher
from gateway.redis.scripts import PLACEHOLDER, lua_tables
from tests.support.metrics import sample
from tests.support.orders import order, post_orders

ERROR_ID = re.compile(r"^[0-9a-f]{16}$")


def viewed(email: str, event_id: str, product: str | None = "P1") -> dict[str, Any]:
    params = [{"name": "email", "value": email}]
    if product is None:
        params.append({"name": "page", "value": '{"location": "https://shop.example/"}'})
        return {"eventTypeKey": "pageViewed", "eventId": event_id, "params": params}
    params.append({"name": "product", "value": orjson.dumps({"productId": product}).decode()})
    return {"eventTypeKey": "productViewed", "eventId": event_id, "params": params}


async def damage(api: Any, sync_redis: Any, email: str, suffix: str) -> str:
    """Store an event of `email`, then replace one of its contact's keys by a string: the key."""
    assert (await api.event(viewed(email, f"first-{email}"))).status_code == 200
    key: str = api.keys.contact((await api.contact(email))["id"], suffix)
    sync_redis.delete(key)
    sync_redis.set(key, "damaged")
    return key


@contextmanager
def script_calls(batcher: IngestBatcher) -> Iterator[list[Any]]:
    """The replies of every ingest.lua call made meanwhile, a list per call: which events
    shared one."""
    replies: list[Any] = []
    execute = batcher._execute

    async def recording(calls: list[Any]) -> list[Any]:
        results = await execute(calls)
        replies.extend(results)
        return results

    batcher._execute = recording  # type: ignore[method-assign]
    try:
        yield replies
    finally:
        batcher._execute = execute  # type: ignore[method-assign]


def logged(caplog: pytest.LogCaptureFixture, error_id: str) -> str:
    (record,) = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert record.levelno == logging.ERROR
    return record.getMessage()


@pytest.mark.parametrize("suffix", ["", ":ev", ":pv"])
async def test_a_damaged_contact_fails_alone_among_concurrent_requests(
    api, sync_redis, caplog, suffix
):
    caplog.set_level(logging.ERROR, logger="gateway")
    damaged = await damage(api, sync_redis, "damaged@example.com", suffix)
    singles = [viewed(f"healthy{n}@example.com", f"h{n}", f"P{n}") for n in range(4)]
    singles.insert(2, viewed("damaged@example.com", "d1"))
    batch = [viewed("healthy8@example.com", "h8", "P8"), viewed("damaged@example.com", "d2")]
    batch.append(viewed("healthy9@example.com", "h9", "P9"))

    with script_calls(api.gateway.batcher) as calls:
        *answers, many = await asyncio.gather(
            *(api.event(body) for body in singles), api.events(batch)
        )
    # all of them in one script call, which stored the healthy events and failed the others
    (replies,) = calls
    assert sorted(replies)[:6] == [b"a"] * 6
    assert [r[:11] for r in sorted(replies)[6:]] == [b"e|WRONGTYPE"] * 2

    failed = answers.pop(2)
    assert failed.status_code == 500
    body = failed.json()
    assert body == {"error": "internal_error", "message": INTERNAL_ERROR.message, "id": body["id"]}
    assert ERROR_ID.match(body["id"])
    assert "WRONGTYPE" in logged(caplog, body["id"])
    for n, answer in enumerate(answers):
        assert answer.json() == {"status": "accepted", "eventId": f"h{n}"}
    answer = many.json()
    (entry,) = answer["failed"]
    assert answer == {"accepted": 2, "duplicates": 0, "failed": [entry]}
    assert entry == {
        "index": 1,
        "error": "internal_error",
        "message": INTERNAL_ERROR.message,
        "id": entry["id"],
    }
    assert entry["id"] != body["id"] and "WRONGTYPE" in logged(caplog, entry["id"])

    for n in (0, 1, 2, 3, 8, 9):  # every healthy event stored, as if alone
        contact = await api.contact(f"healthy{n}@example.com")
        assert [p["productId"] for p in contact["recentProducts"]] == [f"P{n}"]
        assert contact["identifiers"]["email"] == [f"healthy{n}@example.com"]
    metrics = (await api.http.get("/metrics")).text
    tenant = {"tenant": api.tenant_id}
    assert sample(metrics, "gateway_events_rejected_total", reason="internal_error", **tenant) == 2
    # the first event of the damaged contact, and the six healthy ones
    assert sample(metrics, "gateway_events_accepted_total", type="productViewed", **tenant) == 7

    # A failed event is not remembered as seen: once the key is repaired, its retry is stored.
    sync_redis.delete(damaged)
    retried = await api.event(singles[2])
    assert retried.json() == {"status": "accepted", "eventId": "d1"}
    assert (await api.events(batch)).json() == {"accepted": 1, "duplicates": 2, "failed": []}
    contact = await api.contact("damaged@example.com")
    assert contact["recentProducts"][0]["productId"] == "P1"


@pytest.mark.both_transports
async def test_the_500_of_a_failed_event_names_its_log_entry(api, sync_redis, caplog):
    caplog.set_level(logging.ERROR, logger="gateway")
    await damage(api, sync_redis, "damaged@example.com", "")
    for site in (False, True):
        answer = await api.event(viewed("damaged@example.com", f"site-{site}"), site=site)
        assert (answer.status_code, answer.headers["content-type"]) == (500, "application/json")
        body = answer.json()
        assert (body["error"], body["message"]) == ("internal_error", INTERNAL_ERROR.message)
        assert "WRONGTYPE" in logged(caplog, body["id"])
    assert (await api.event(viewed("healthy@example.com", "h"))).status_code == 200


async def test_a_damaged_run_fails_only_the_events_it_holds(api, sync_redis, caplog):
    """Events of one contact in a row are a run: their list and view writes are made once at its
    end. Damaged views fail that write, so the run's events after its first fail, and only those;
    the first (a page view, no view write) and the events around the run are stored."""
    caplog.set_level(logging.ERROR, logger="gateway")
    damaged = await damage(api, sync_redis, "run@example.com", ":pv")
    batch = [
        viewed("before@example.com", "b1", "B"),
        viewed("run@example.com", "r1", None),  # the run's first: stored in full
        viewed("run@example.com", "r2", "R2"),
        viewed("run@example.com", "r3", "R3"),
        viewed("run@example.com", "r3", "R3"),  # a duplicate in the run: not failed
        viewed("after@example.com", "a1", "A"),
        viewed("run@example.com", "r4", "R4"),  # no run: fails on its own
    ]
    with script_calls(api.gateway.batcher) as calls:
        single, many = await asyncio.gather(
            api.event(viewed("single@example.com", "s1", "S")), api.events(batch)
        )
    assert len(calls) == 1 and len(calls[0]) == 1 + len(batch)
    assert single.json() == {"status": "accepted", "eventId": "s1"}
    answer = many.json()
    assert [f["index"] for f in answer["failed"]] == [2, 3, 6]
    assert (answer["accepted"], answer["duplicates"]) == (3, 1)
    assert all(f["error"] == "internal_error" for f in answer["failed"])
    assert all("WRONGTYPE" in logged(caplog, f["id"]) for f in answer["failed"])
    for email, product in (("before", "B"), ("after", "A"), ("single", "S")):
        contact = await api.contact(f"{email}@example.com")
        assert [p["productId"] for p in contact["recentProducts"]] == [product]
    listed = (await api.get("/v1/events?contact=run@example.com&limit=10")).json()["events"]
    assert "pageViewed" in [e["eventTypeKey"] for e in listed]

    sync_redis.delete(damaged)
    retried = (await api.events([batch[i] for i in (2, 3, 6)])).json()
    assert retried == {"accepted": 3, "duplicates": 0, "failed": []}
    contact = await api.contact("run@example.com")
    assert sorted(p["productId"] for p in contact["recentProducts"]) == ["R2", "R3", "R4"]


async def test_a_damaged_contact_fails_its_order_alone(api, sync_redis, caplog):
    caplog.set_level(logging.ERROR, logger="gateway")
    await damage(api, sync_redis, "damaged@example.com", "")
    answer = await post_orders(
        api,
        order("good-1", email="one@example.com"),
        order("bad", email="damaged@example.com"),
        {"externalOrderId": "invalid"},
        order("good-2", status="DELIVERED", email="two@example.com"),
    )
    bad, invalid = answer["failedOrders"]
    assert bad == {
        "index": 1,
        "externalOrderId": "bad",
        "errors": [INTERNAL_ERROR.message],
        "error": "internal_error",
        "id": bad["id"],
    }
    assert "WRONGTYPE" in logged(caplog, bad["id"])
    assert invalid["index"] == 2 and "error" not in invalid
    assert (await api.get("/v1/orders/good-1")).json()["status"] == "INITIALIZED"
    assert (await api.get("/v1/orders/good-2")).json()["status"] == "DELIVERED"
    assert (await api.get("/v1/orders/bad")).status_code == 404
    assert (await api.contact("two@example.com"))["orders"]["count"] == 1
    metrics = (await api.http.get("/metrics")).text
    failed = "gateway_orders_failed_total"
    assert sample(metrics, failed, reason="internal_error", tenant=api.tenant_id) == 1


def lib_failed(sync_redis: Any, error: str) -> bytes:
    """lib_errors.lua's `failed` on an error's text, run by Redis as the scripts run it."""
    lib = (resources.files("gateway.redis") / "lua" / "lib_errors.lua").read_text()
    text = PLACEHOLDER.sub(lambda found: lua_tables()[found[1]], lib)
    reply: bytes = sync_redis.eval(text + "\nreturn failed(ARGV[1])", 0, error)
    return reply


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("OOM command not allowed when used memory > 'maxmemory'.", "OOM"),  # as Redis 7 words it
        ("=[C]: -1: -OOM command not allowed when used memory > 'maxmemory'.\r\n", "OOM"),  # 6
        ("MISCONF Redis is configured to save RDB snapshots, but it is unable to", "MISCONF"),
        ("-READONLY You can't write against a read only replica.", "READONLY"),
        ("MOVED 3999 127.0.0.1:6381", "MOVED"),
    ],
)
def test_redis_refusing_writes_still_fails_the_whole_call(sync_redis, error, code):
    """What store.is_unavailable answers 503 stays the call's error, not an event's 500
    (tests/process/test_outage.py fills a real Redis's memory)."""
    with pytest.raises(ResponseError) as raised:
        lib_failed(sync_redis, error)
    assert f"{code} " in str(raised.value)


@pytest.mark.parametrize(
    "error",
    [
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "user_script:9: attempt to perform arithmetic on a nil value",
        "ERR value is not an integer (of the TASK list)",  # a code's letters in a word: no code
    ],
)
def test_an_error_of_what_redis_holds_fails_its_event(sync_redis, error):
    assert lib_failed(sync_redis, error) == b"e|" + error.encode()
