"""Webhooks: a real local HTTP receiver checks signatures, retries and dead letters.

The contract: docs/triggers.md, Webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime

import orjson

from tests.support.gateways import free_port
from tests.support.triggering import TIMEOUT, Receiver, cart, closed, page, product, send, triggers
from tests.support.waiting import wait_for

SECRET = "whsec_test_secret"
MUG = {"productId": "MUG-1", "quantity": 1, "price": 9.5}


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What the README tells a consumer to do."""
    signed = headers["x-gateway-timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-gateway-signature"])


def hook(url: str, **extra: object) -> dict[str, object]:
    return {"url": url, "secret": SECRET, **extra}


async def received(server: Receiver, count: int, timeout: float = 10.0) -> None:
    await wait_for(lambda: len(server.requests) >= count, timeout, f"{count} webhook requests")


async def test_signed_delivery_once_the_visit_times_out(make_api, receiver):
    api, _ = await make_api(visit_timeout_seconds=1.0, webhooks=[hook(receiver.url)])
    started = time.time()
    await send(api, product("wh@x.io", "P1"), cart("wh@x.io", "rs-wh", [MUG]))
    sent = time.time()
    await received(receiver, 1)
    headers, body, at = receiver.requests[0]
    # the visit closes a timeout after its last event, which came after `started`; how soon
    # after that the webhook arrives is for `make bench`, not for a test on a busy machine
    assert at - started >= 1.0
    assert verify(SECRET, headers, body)
    assert not verify("whsec_wrong_secret", headers, body)
    trigger = json.loads(body)
    assert headers["x-gateway-id"] == trigger["id"]
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["x-gateway-timestamp"]) - at) < 5  # the signing time
    feed = (await triggers(api))[0]
    feed.pop("deliveries")  # the feed's own (test_trigger_deliveries.py), not sent
    assert trigger == feed
    assert trigger["type"] == "abandonedCart"
    # counted once the gateway has the receiver's answer, which may be after the receiver noted
    # the request
    deliveries = api.gateway.metrics.webhook_deliveries
    await wait_for(lambda: deliveries.get(api.tenant_id) == 1, what="the delivery counted")
    text = (await api.http.get("/metrics")).text
    assert f'gateway_detector_lag_seconds{{tenant="{api.tenant_id}"}}' in text
    print(f"webhook received {at - sent - 1.0:.3f} s after the visit timeout")


async def test_types_filter_what_a_webhook_gets(make_api, receiver):
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT, webhooks=[hook(receiver.url, types=["abandonedBrowse"])]
    )
    await send(api, page("v@x.io"), product("b@x.io", "P1"))
    await received(receiver, 1)
    assert len(await triggers(api)) == 2
    assert [json.loads(b)["type"] for _, b, _ in receiver.requests] == ["abandonedBrowse"]


async def test_failed_deliveries_are_retried_with_backoff(make_api, receiver):
    receiver.statuses = [500, 503]
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT,
        webhooks=[hook(receiver.url, retry_initial_seconds=0.1, retry_budget_seconds=30)],
    )
    await send(api, page("retry@x.io"))
    await received(receiver, 3)
    bodies = {body for _, body, _ in receiver.requests}
    assert len(bodies) == 1  # the same trigger each time ...
    ids = {headers["x-gateway-id"] for headers, _, _ in receiver.requests}
    assert len(ids) == 1  # ... recognisable by its id
    gaps = [b[2] - a[2] for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # 0.1 s, then 0.2 s, each jittered down to half
    metrics = api.gateway.metrics
    assert metrics.webhook_failures.get(api.tenant_id) == 2
    await wait_for(lambda: metrics.webhook_deliveries.get(api.tenant_id) == 1)
    assert (await api.get("/v1/webhooks/dead")).json() == {"dead": []}


async def test_dead_letter_after_the_retry_budget(make_api, receiver):
    receiver.default = 500
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT,
        webhooks=[hook(receiver.url, retry_initial_seconds=0.05, retry_budget_seconds=0.5)],
    )
    await send(api, page("dead@x.io"))
    metrics = api.gateway.metrics
    await wait_for(lambda: metrics.webhook_dead.get(api.tenant_id) == 1)
    attempts = len(receiver.requests)
    assert attempts >= 2
    (dead,) = (await api.get("/v1/webhooks/dead")).json()["dead"]
    assert dead["webhook"] == receiver.url
    assert dead["attempts"] == attempts and dead["lastError"] == "HTTP 500"
    feed = (await triggers(api))[0]
    dead_at = {"state": "dead", "deadAt": dead["deadAt"]}
    assert feed.pop("deliveries") == [{"webhook": receiver.url, **dead_at}]
    assert dead["trigger"] == feed
    assert dead["triggerId"] == dead["trigger"]["id"]
    text = (await api.http.get("/metrics")).text
    assert f'gateway_webhook_dead_letters_total{{tenant="{api.tenant_id}"}} 1.0' in text
    assert f'gateway_webhook_failures_total{{tenant="{api.tenant_id}"}} {attempts}.0' in text


async def test_retries_use_the_whole_budget(make_api, receiver):
    # docs/triggers.md, Webhooks: retried until the trigger is retry_budget_seconds old. A delay
    # that would overshoot the budget is clipped to its end, so the last attempt is made when the
    # budget is spent, not one delay before.
    receiver.default = 500
    budget = 2.0  # attempts at about 0, 0.3, 0.9 and 2 s: three or more on a busy machine too
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT,
        webhooks=[hook(receiver.url, retry_initial_seconds=0.3, retry_budget_seconds=budget)],
    )
    await send(api, *(page(f"budget{n}@x.io") for n in range(5)))
    metrics = api.gateway.metrics
    await wait_for(lambda: metrics.webhook_dead.get(api.tenant_id) == 5, timeout=15.0)
    dead = (await api.get("/v1/webhooks/dead")).json()["dead"]
    assert len(dead) == 5
    for letter in dead:
        born = int(letter["streamId"].split("-")[0]) / 1000
        dead_at = datetime.fromisoformat(letter["deadAt"].replace("Z", "+00:00")).timestamp()
        tries = [
            at
            for headers, _, at in receiver.requests
            if headers["x-gateway-id"] == letter["triggerId"]
        ]
        assert len(tries) == letter["attempts"] >= 3
        assert dead_at - born >= budget  # never dead before the budget is spent ...
        # ... and tried at its end (not one delay before), the last try before it was given up
        assert budget - 0.01 <= max(tries) - born <= dead_at - born + 0.01


async def test_ingest_goes_on_while_deliveries_to_a_dead_endpoint_fail(make_api):
    nobody = f"http://127.0.0.1:{free_port()}/hook"  # connection refused
    api, _ = await make_api(
        visit_timeout_seconds=0.1,
        webhooks=[hook(nobody, retry_initial_seconds=0.01, timeout_seconds=0.2)],
    )
    failures = api.gateway.metrics.webhook_failures
    for n in range(10):
        await send(api, page(f"slow{n}@x.io"))
    await wait_for(lambda: failures.get(api.tenant_id) > 0, what="a failed delivery")
    for n in range(10, 20):  # each accepted while deliveries fail
        await send(api, page(f"slow{n}@x.io"))
    await wait_for(lambda: failures.get(api.tenant_id) > 5, what="more failed deliveries")
    assert len(await closed(api, 20)) == 20  # every visit closed, each with its trigger


async def test_dead_letters_stored_with_a_full_url_are_shown_redacted(api, sync_redis):
    """Stored by a gateway from before redaction: the URL is hidden when read, too."""
    entry = {"webhook": "https://u:pw@crm.example/hook?token=abc", "triggerId": "t1", "attempts": 3}
    sync_redis.lpush(api.keys.dead_letters, orjson.dumps(entry))
    (dead,) = (await api.get("/v1/webhooks/dead")).json()["dead"]
    assert dead == {**entry, "webhook": "https://***@crm.example/hook?token=***"}
