"""Where each trigger of the feed stands with each webhook (`deliveries` of GET /v1/triggers),
each webhook's counts (GET /v1/webhooks), and the feed read newest first with `before`
(docs/api.md, Triggers and their deliveries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.support.gateways import Api, build_settings, tenant_config, unique
from tests.support.orders import order, post_orders
from tests.support.paging import pages_before
from tests.support.triggering import TIMEOUT, Receiver, cart, closed, send, triggers
from tests.support.waiting import wait_for

MUG = {"productId": "MUG-1", "quantity": 1, "price": 9.5}


def hook(url: str, **extra: object) -> dict[str, object]:
    return {"url": url, "secret": "whsec_test_secret", **extra}


async def states(api: Api) -> dict[str, list[dict[str, Any]]]:
    """Each trigger type's deliveries (one trigger of each type here)."""
    return {t["type"]: t["deliveries"] for t in await triggers(api)}


async def test_delivered_retrying_and_dead_per_webhook(make_api: Any, receiver: Receiver) -> None:
    failing, slow = Receiver(default=500), Receiver(default=500)
    hooks = [
        hook(receiver.url, types=["abandonedCart"]),
        hook(
            await failing.start() + "?token=s3cret",
            types=["abandonedCart"],
            retry_initial_seconds=0.05,
            retry_budget_seconds=0.2,
        ),
        # failing too, with a day to go: still retrying when looked at
        hook(await slow.start(), retry_initial_seconds=3600),
    ]
    try:
        api, other = await make_api(visit_timeout_seconds=TIMEOUT, webhooks=hooks)
        await send(api, cart("ann@x.io", "rs-1", [MUG]))
        await closed(api, 1)
        await post_orders(api, order("o-1", email="bob@x.io"))
        await wait_for(lambda: receiver.requests and slow.requests, 10, "the deliveries")
        dead = api.gateway.metrics.webhook_dead
        await wait_for(lambda: dead.get(api.tenant_id) == 1, 10, "the dead letter")
    finally:
        await failing.stop()
        await slow.stop()

    async def settled() -> bool:
        found = await states(api)
        return found["abandonedCart"][0]["state"] == "delivered"

    await wait_for(settled, 10, "the delivery answered")
    found = await states(api)
    (letter,) = (await api.get("/v1/webhooks/dead")).json()["dead"]
    delivered, died, retrying = found["abandonedCart"]
    assert delivered == {"webhook": receiver.url, "state": "delivered"}
    # named as the dead letter names it: without the token
    assert died == {
        "webhook": failing.url + "?token=***",
        "state": "dead",
        "deadAt": letter["deadAt"],
    }
    assert retrying["webhook"] == slow.url
    assert retrying["state"] == "retrying" and retrying["attempts"] == 1
    assert retrying["nextAttemptAt"] > letter["deadAt"]  # an hour or so on
    # the order's trigger is routed to the webhook of every type only
    (only,) = found["orderINITIALIZED"]
    assert only["webhook"] == slow.url and only["state"] in {"queued", "retrying"}

    counts = (await api.get("/v1/webhooks")).json()["webhooks"]
    assert counts == [
        {"webhook": receiver.url, "types": ["abandonedCart"], "scheduled": 0, "dead": 0},
        {
            "webhook": failing.url + "?token=***",
            "types": ["abandonedCart"],
            "scheduled": 0,
            "dead": 1,
        },
        {"webhook": slow.url, "types": None, "scheduled": 2, "dead": 0},
    ]
    theirs = (await other.get("/v1/webhooks")).json()["webhooks"]
    assert [(w["scheduled"], w["dead"]) for w in theirs] == [(0, 0)] * 3


async def test_no_webhook_no_deliveries(api: Api) -> None:
    await post_orders(api, order("o-1"))
    (trigger,) = await triggers(api)
    assert trigger["deliveries"] == []
    assert (await api.get("/v1/webhooks")).json() == {"webhooks": []}


async def newest_pages(api: Api, query: str) -> list[list[str]]:
    """The externalOrderIds of every page read newest first, following `next` to null."""
    return await pages_before(
        api,
        "/v1/triggers",
        query,
        lambda body: [t["order"]["externalOrderId"] for t in body["triggers"]],
    )


async def test_newest_first_pages_back_to_the_first_trigger(api: Api) -> None:
    count = 120  # more than one page of 50 (and of the feed's default 100)
    for start in range(0, count, 40):
        await post_orders(api, *(order(f"o-{n:03}") for n in range(start, start + 40)))
    newest = [f"o-{n:03}" for n in reversed(range(count))]
    pages = await newest_pages(api, "limit=50")
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [o for p in pages for o in p] == newest
    # with no limit, the default page of 100, then the rest
    assert [len(p) for p in await newest_pages(api, "")] == [100, 20]
    # a type reads the same way; the oldest-first read is unchanged
    assert await newest_pages(api, "type=orderINITIALIZED&limit=70") == [newest[:70], newest[70:]]
    oldest = (await api.get("/v1/triggers?limit=3")).json()["triggers"]
    assert [t["order"]["externalOrderId"] for t in oldest] == ["o-000", "o-001", "o-002"]
    for cursor in ("0-0", "0"):  # nothing is older than the stream's first id
        empty = (await api.get(f"/v1/triggers?before={cursor}")).json()
        assert empty == {"triggers": [], "next": None}


@pytest.mark.parametrize("cursor", ["abc", "1-2-3", "-1", "18446744073709551616-0", "1.5"])
async def test_a_bad_before_cursor_is_a_400_naming_it(api: Api, cursor: str) -> None:
    answer = await api.get(f"/v1/triggers?before={cursor}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "before"


async def test_after_and_before_together_are_refused(api: Api) -> None:
    answer = await api.get("/v1/triggers?after=0-0&before=")
    assert answer.status_code == 400
    assert answer.json()["field"] == "before" and "not both" in answer.json()["message"]


async def test_a_trigger_from_before_the_webhook_was_not_sent(
    redis_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """docs/triggers.md: a new webhook starts with the triggers emitted after it was configured."""
    tenant = unique("since")
    auth = {"authorization": f"Bearer sk_{tenant}"}
    orders = [[order("o-before")], [order("o-after")]]
    for webhooks, sent in zip(([], [hook(receiver.url)]), orders, strict=True):
        settings = build_settings(redis_url, tmp_path, [tenant_config(tenant, webhooks=webhooks)])
        app = create_app(settings)
        async with app.lifespan():
            asgi = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=asgi, base_url="http://gw") as http:
                stored = await http.post("/v1/orders", json={"orders": sent}, headers=auth)
                assert stored.status_code == 200, stored.text
                if webhooks:
                    await wait_for(lambda: receiver.requests, 10, "the delivery")

                    async def delivered() -> bool:
                        feed = (await http.get("/v1/triggers", headers=auth)).json()
                        return feed["triggers"][-1]["deliveries"][0]["state"] == "delivered"

                    await wait_for(delivered, 10, "the delivery answered")
                    feed = (await http.get("/v1/triggers", headers=auth)).json()["triggers"]
    assert [(t["order"]["externalOrderId"], t["deliveries"]) for t in feed] == [
        ("o-before", [{"webhook": receiver.url, "state": "notSent"}]),
        ("o-after", [{"webhook": receiver.url, "state": "delivered"}]),
    ]
    assert len(receiver.requests) == 1
