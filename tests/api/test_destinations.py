"""Destinations: accepted events and stored orders reach a fake eSputnik in its own shapes.

The contract: docs/destinations.md (SPEC §16). The fake is a real local HTTP server checking
HTTP Basic; the bodies are compared with the eSputnik seed examples value for value.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from tests.support.esputnik import Answer, FakeEsputnik, destination
from tests.support.privacy import erase
from tests.support.seeds import json_blocks, seed_text
from tests.support.waiting import wait_for

SEED_EVENTS = json_blocks(seed_text("004"), "eventTypeKey")
FAST = {"timeout_seconds": 2}


async def post_raw(api: Any, path: str, body: str) -> dict[str, Any]:
    headers = {**api.server(), "content-type": "application/json"}
    response = await api.http.post(path, content=body.encode(), headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def view(email: str, n: int) -> dict[str, Any]:
    return {
        "eventTypeKey": "pageViewed",
        "keyValue": email,
        "params": [{"name": "page", "value": f'{{"location":"https://shop.example/p/{n}"}}'}],
    }


async def forwarded(fake: FakeEsputnik, path: str, count: int, timeout: float = 15.0) -> None:
    await wait_for(lambda: len(fake.at(path)) >= count, timeout, f"{count} requests to {path}")


async def test_seed_events_are_forwarded_as_printed(make_api, esputnik):
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    for body in SEED_EVENTS:
        assert (await post_raw(api, "/v1/event", body))["status"] == "accepted"
    await forwarded(esputnik, "/v1/event", len(SEED_EVENTS))
    got = sorted((r.json() for r in esputnik.at("/v1/event")), key=orjson.dumps)
    sent = sorted((orjson.loads(body) for body in SEED_EVENTS), key=orjson.dumps)
    # value for value: the stringified JSON params (even the seed's malformed product) as sent
    assert got == sent
    assert all(r.headers["content-type"] == "application/json" for r in esputnik.requests)
    assert all(r.password == esputnik.api_key for r in esputnik.requests)  # HTTP Basic
    metrics = api.gateway.metrics
    await wait_for(lambda: metrics.destination_forwarded.get(api.tenant_id, _id(api)) == 5)


def _id(api: Any) -> str:
    tenant = next(t for t in api.gateway.settings.tenants if t.id == api.tenant_id)
    return str(tenant.destinations[0].id)


async def test_values_stay_as_received(make_api, esputnik):
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    stringified = '{"productId":"P1","price":1.50}'
    event = {
        "eventTypeKey": "productViewed",
        "eventId": "values-1",
        "params": {
            "email": "vals@example.com",
            "product": {"productId": "P2", "price": 2},  # an object: stringified once
            "note": stringified,
        },
    }
    assert (await api.event(event)).json()["status"] == "accepted"
    assert (await api.event(event)).json()["status"] == "duplicate"  # never forwarded twice
    await forwarded(esputnik, "/v1/event", 1)
    (request,) = esputnik.at("/v1/event")
    assert request.json() == {
        "eventTypeKey": "productViewed",
        "params": [
            {"name": "email", "value": "vals@example.com"},
            {"name": "product", "value": '{"productId":"P2","price":2}'},
            {"name": "note", "value": stringified},
        ],
    }
    assert stringified.encode() in request.body.replace(b'\\"', b'"')


@pytest.mark.parametrize("prefix", ["000", "002", "003"])
async def test_seed_orders_are_forwarded_in_a_batch(make_api, esputnik, prefix):
    api, _ = await make_api(destinations=[destination(esputnik.url, types=["pageViewed"])])
    (body,) = json_blocks(seed_text(prefix), '"orders"')
    assert (await post_raw(api, "/v1/orders", body)) == {"failedOrders": []}
    await forwarded(esputnik, "/v1/orders", 1)
    (request,) = esputnik.at("/v1/orders")
    assert request.json() == orjson.loads(body)  # the orders as received
    assert esputnik.at("/v1/event") == []  # an order is not sent as an event too


async def test_types_choose_the_events_and_order_per_contact_is_kept(make_api, esputnik):
    api, _ = await make_api(destinations=[destination(esputnik.url, types=["pageViewed"])])
    views = [view("order@example.com", n) for n in range(12)]
    other = {"eventTypeKey": "productCategoryViewed", "keyValue": "order@example.com"}
    other["params"] = [{"name": "category", "value": '{"productCategoryId":"C1"}'}]
    response = await api.events([*views[:6], other, *views[6:]])
    assert response.json()["accepted"] == 13, response.text
    await forwarded(esputnik, "/v1/event", 12)
    got = [r.json()["params"][0]["value"] for r in esputnik.at("/v1/event")]
    assert got == [view("", n)["params"][0]["value"] for n in range(12)]


async def test_503s_are_retried_honouring_retry_after(make_api, esputnik):
    esputnik.answers = [
        Answer(503, b"busy"),
        Answer(429, b"slow down", {"retry-after": "1"}),
    ]
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    assert (await api.event(view("retry@example.com", 1))).status_code == 200
    await forwarded(esputnik, "/v1/event", 3)
    first, second, third = esputnik.at("/v1/event")
    assert first.body == second.body == third.body
    assert third.at - second.at >= 0.9  # Retry-After: 1
    metrics, dest = api.gateway.metrics, _id(api)
    await wait_for(lambda: metrics.destination_forwarded.get(api.tenant_id, dest) == 1)
    assert metrics.destination_failed.get(api.tenant_id, dest) == 2
    assert (await api.get("/v1/destinations/dead")).json() == {"dead": [], "next": None}


async def test_a_400_is_dead_lettered_and_can_be_sent_again(make_api, esputnik):
    refusal = b'{"error":"Invalid eventTypeKey"}' + b"x" * 3000
    esputnik.answers = [Answer(400, refusal)]
    api, other = await make_api(destinations=[destination(esputnik.url, **FAST)])
    sent = view("dead@example.com", 1)
    assert (await api.event(sent)).status_code == 200
    metrics, dest = api.gateway.metrics, _id(api)
    await wait_for(lambda: metrics.destination_dead.get(api.tenant_id, dest) == 1)
    assert len(esputnik.at("/v1/event")) == 1  # not retried
    (dead,) = (await api.get("/v1/destinations/dead")).json()["dead"]
    assert dead["destination"] == dest and dead["url"] == esputnik.url
    assert (dead["kind"], dead["attempts"], dead["lastError"]) == ("event", 1, "HTTP 400")
    assert dead["answer"] == refusal[:2048].decode()
    assert dead["body"] == sent
    assert (await other.get("/v1/destinations/dead")).json()["dead"] == []
    text = (await api.http.get("/metrics")).text
    labels = f'destination="{dest}",tenant="{api.tenant_id}"'
    assert f"gateway_destination_dead_total{{{labels}}} 1.0" in text
    # sent again: the fake now answers 200, and the dead letter is gone
    retry = f"/v1/destinations/dead/{dead['id']}/retry"
    assert (await other.http.post(retry, headers=other.server())).status_code == 404
    response = await api.http.post(retry, headers=api.server())
    assert response.status_code == 202, response.text
    await forwarded(esputnik, "/v1/event", 2)
    assert esputnik.at("/v1/event")[1].json() == sent
    assert (await api.get("/v1/destinations/dead")).json()["dead"] == []
    assert (await api.http.post(retry, headers=api.server())).status_code == 404


async def test_wrong_key_and_unreachable_destination(make_api, esputnik):
    esputnik.api_key = "another-key"  # the fake answers 401: a refusal, dead at once
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    assert (await api.event(view("key@example.com", 1))).status_code == 200
    metrics, dest = api.gateway.metrics, _id(api)
    await wait_for(lambda: metrics.destination_dead.get(api.tenant_id, dest) == 1)
    (dead,) = (await api.get("/v1/destinations/dead")).json()["dead"]
    assert dead["lastError"] == "HTTP 401"


async def test_queue_length_and_oldest_age_in_metrics(make_api, esputnik):
    esputnik.default = Answer(503, b"down")
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    started = time.time()
    assert (await api.event(view("wait@example.com", 1))).status_code == 200
    labels = f'destination="{_id(api)}",tenant="{api.tenant_id}"'

    async def shown() -> bool:
        text = (await api.http.get("/metrics")).text
        return f"gateway_destination_queue_length{{{labels}}} 1.0" in text and any(
            line.startswith(f"gateway_destination_oldest_seconds{{{labels}}}")
            and 0.5 <= float(line.split()[-1]) <= time.time() - started + 1
            for line in text.splitlines()
        )

    await wait_for(shown, 15.0, "the queue in /metrics")


async def test_dead_letters_page_and_odd_ids_are_not_found(make_api, esputnik):
    esputnik.default = Answer(422, b'{"error":"unknown contact"}')
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    for n in range(3):
        assert (await api.event(view("page@example.com", n))).status_code == 200
    metrics, dest = api.gateway.metrics, _id(api)
    await wait_for(lambda: metrics.destination_dead.get(api.tenant_id, dest) == 3)
    first = (await api.get("/v1/destinations/dead?limit=2")).json()
    assert len(first["dead"]) == 2 and first["next"] == first["dead"][1]["id"]
    rest = (await api.get(f"/v1/destinations/dead?limit=2&before={first['next']}")).json()
    assert len(rest["dead"]) == 1 and rest["next"] is None
    pages = [d["body"]["params"][0]["value"] for d in first["dead"] + rest["dead"]]
    assert pages == [view("", n)["params"][0]["value"] for n in (2, 1, 0)]  # newest first
    assert (await api.get("/v1/destinations/dead?before=0-0")).json()["dead"] == []
    assert (await api.get("/v1/destinations/dead?before=x")).status_code == 400
    for odd in ("x", "99999999999999999999-0", "1-99999999999999999999"):
        response = await api.http.post(f"/v1/destinations/dead/{odd}/retry", headers=api.server())
        assert response.status_code == 404, odd


async def test_a_kept_alive_connection_the_server_dropped_is_not_a_failure(make_api, esputnik):
    # Servers close idle kept-alive connections: the request that meets such a close is sent
    # again on a new connection, not counted as failed nor delayed by a retry.
    esputnik.drop_after_answer = True
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    for n in range(3):
        assert (await api.event(view(f"drop{n}@example.com", n))).status_code == 200
        await forwarded(esputnik, "/v1/event", n + 1)
    metrics, dest = api.gateway.metrics, _id(api)
    await wait_for(lambda: metrics.destination_forwarded.get(api.tenant_id, dest) == 3)
    assert metrics.destination_failed.get(api.tenant_id, dest) == 0
    assert len(esputnik.requests) == 3


async def test_a_dead_letter_of_a_destination_no_longer_configured(make_api, sync_redis):
    api, _ = await make_api()
    keys = api.gateway.tenant_keys(api.gateway.settings.tenants[0])
    entry = {"attempts": 1, "lastError": "HTTP 400", "answer": "no", "deadAt": "x"}
    body = {"eventTypeKey": "pageViewed", "keyValue": "gone@example.com", "params": []}
    dead_id = sync_redis.xadd(
        keys.destination_dead,
        {"d": "0123456789ab", "k": "e", "b": orjson.dumps(body), "m": orjson.dumps(entry)},
    ).decode()
    (dead,) = (await api.get("/v1/destinations/dead")).json()["dead"]
    assert (dead["id"], dead["url"], dead["body"]) == (dead_id, None, body)
    response = await api.http.post(f"/v1/destinations/dead/{dead_id}/retry", headers=api.server())
    assert response.status_code == 409 and response.json()["error"] == "destination_gone"
    assert len((await api.get("/v1/destinations/dead")).json()["dead"]) == 1  # kept


async def test_a_suppressed_contact_is_not_forwarded(make_api, esputnik):
    api, _ = await make_api(destinations=[destination(esputnik.url, **FAST)])
    assert (await api.event(view("gone@example.com", 1))).status_code == 200
    await forwarded(esputnik, "/v1/event", 1)
    await erase(api, "gone@example.com", "?suppress=true")
    assert (await api.event(view("gone@example.com", 2))).json()["status"] == "ignored"
    assert (await api.event(view("kept@example.com", 3))).status_code == 200
    await forwarded(esputnik, "/v1/event", 2)
    pages = [r.json()["params"][0]["value"] for r in esputnik.at("/v1/event")]
    assert pages == [view("", n)["params"][0]["value"] for n in (1, 3)]
