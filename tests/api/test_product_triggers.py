"""Product watches and the priceDrop and backInStock triggers: who watches, who is told, once.

The contract: docs/triggers.md, Price drops and back in stock.
"""

from __future__ import annotations

import json
import re

from gateway.background.fanout import CHUNK
from tests.support.orders import order, post_orders
from tests.support.products import catalog, seen, told, view
from tests.support.triggering import cart, send, triggers
from tests.support.waiting import wait_for

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ANN = "ann@example.com"


async def test_a_price_drop_tells_the_watcher_what_it_saw_and_what_it_costs_now(
    make_api, sync_redis
):
    api, other = await make_api()
    await view(api, seen(ANN, "WS01", price=100.1), seen("bob@example.com", "WS01", price=95))
    await catalog(api, {"productId": "WS01", "price": 100.1, "currencyCode": "USD", "isInStock": 1})
    assert await told(api, sync_redis, "priceDrop") == []
    await catalog(api, {"productId": "WS01", "price": 90.09})  # 10 % below what Ann saw
    (trigger,) = await told(api, sync_redis, "priceDrop")
    contact = await api.contact(ANN)
    assert trigger["type"] == "priceDrop" and trigger["tenant"] == api.tenant_id
    assert ISO.match(trigger["createdAt"])
    assert trigger["contact"]["id"] == contact["id"] and trigger["contact"]["email"] == ANN
    product = trigger["product"]
    assert ISO.match(product.pop("seenAt"))
    assert product == {
        "productId": "WS01",
        "price": 90.09,
        "seenPrice": 100.1,
        "currencyCode": "USD",
        "isInStock": 1,
    }
    assert await told(other, sync_redis, "priceDrop") == []


async def test_the_threshold_is_the_tenants(make_api, sync_redis):
    api, _ = await make_api(triggers={"price_drop_min_percent": 50})
    await view(api, seen(ANN, "WS01", price=100))
    await catalog(api, {"productId": "WS01", "price": 51, "currencyCode": "USD"})
    assert await told(api, sync_redis, "priceDrop") == []
    await catalog(api, {"productId": "WS01", "price": 50})
    assert len(await told(api, sync_redis, "priceDrop")) == 1


async def test_free_and_still_free_is_no_price_drop(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "GIFT", price=0))
    await catalog(api, {"productId": "GIFT", "price": 0, "currencyCode": "USD"})
    assert await told(api, sync_redis, "priceDrop") == []


async def test_another_currency_is_no_price_drop(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01", price=100, currency="EUR"))
    await catalog(api, {"productId": "WS01", "price": 10, "currencyCode": "USD"})
    assert await told(api, sync_redis, "priceDrop") == []


async def test_back_in_stock_for_those_who_saw_it_out_of_stock(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01", stock=0), seen("bob@example.com", "WS01", stock=1))
    await catalog(api, {"productId": "WS01", "price": 100, "currencyCode": "USD", "isInStock": 0})
    assert await told(api, sync_redis, "backInStock") == []
    await catalog(api, {"productId": "WS01", "isInStock": 1})
    (trigger,) = await told(api, sync_redis, "backInStock")
    assert trigger["contact"]["email"] == ANN
    assert trigger["product"]["isInStock"] == 1 and trigger["product"]["price"] == 100
    assert await told(api, sync_redis, "priceDrop") == []


async def test_once_per_view_until_the_contact_views_again(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01", price=100))
    await catalog(api, {"productId": "WS01", "price": 90, "currencyCode": "USD"})
    assert len(await told(api, sync_redis, "priceDrop")) == 1
    await catalog(api, {"productId": "WS01", "price": 80})
    assert len(await told(api, sync_redis, "priceDrop")) == 1  # the same view: told already
    await view(api, seen(ANN, "WS01", price=80))
    await catalog(api, {"productId": "WS01", "price": 70})
    second = (await told(api, sync_redis, "priceDrop"))[1]
    assert (second["product"]["seenPrice"], second["product"]["price"]) == (80, 70)


async def test_no_trigger_for_what_the_watcher_ordered_since(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01", price=100), seen(ANN, "MUG", price=100))
    await post_orders(api, order("o-1", email=ANN, items=[{"externalItemId": "WS01"}]))
    await catalog(
        api,
        {"productId": "WS01", "price": 50, "currencyCode": "USD"},
        {"productId": "MUG", "price": 50, "currencyCode": "USD"},
    )
    (trigger,) = await told(api, sync_redis, "priceDrop")
    assert trigger["product"]["productId"] == "MUG"


async def test_anonymous_views_are_told_nothing(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, {**seen("v-1", "WS01"), "keyValue": None, "visitorId": "v-1"})
    await catalog(api, {"productId": "WS01", "price": 1, "currencyCode": "USD"})
    assert await told(api, sync_redis, "priceDrop") == []


async def test_a_cart_watches_its_products_at_the_cart_price(make_api, sync_redis):
    api, _ = await make_api()
    await send(api, cart(ANN, "rs-1", [{"productId": "MUG", "quantity": 1, "price": 20}]))
    await catalog(api, {"productId": "MUG", "price": 15, "currencyCode": "USD"})
    (trigger,) = await told(api, sync_redis, "priceDrop")
    assert (trigger["product"]["seenPrice"], trigger["product"]["price"]) == (20, 15)


async def test_the_cooldown_holds_back_a_second_price_drop(make_api, sync_redis):
    api, _ = await make_api(triggers={"cooldown_seconds": 3600})
    await view(api, seen(ANN, "WS01"), seen(ANN, "MUG"))
    await catalog(api, {"productId": "WS01", "price": 50, "currencyCode": "USD"})
    assert len(await told(api, sync_redis, "priceDrop")) == 1
    await catalog(api, {"productId": "MUG", "price": 50, "currencyCode": "USD"})
    metrics = api.gateway.metrics
    await wait_for(
        lambda: metrics.triggers_suppressed.get(api.tenant_id, "priceDrop", "cooldown") == 1,
        20,
        "the held-back price drop counted as suppressed (cooldown)",
    )
    assert len(await told(api, sync_redis, "priceDrop")) == 1


async def test_an_order_after_a_price_drop_is_attributed_to_it(make_api, sync_redis):
    buyer = "buyer@example.com"  # the email of tests/support/orders.py's orders
    api, _ = await make_api()
    await view(api, seen(buyer, "WS01"))
    await catalog(api, {"productId": "WS01", "price": 50, "currencyCode": "USD"})
    (drop,) = await told(api, sync_redis, "priceDrop")
    await post_orders(api, order("o-drop", totalCost=50, currency="USD"))

    async def attributions() -> list[dict[str, object]]:
        return await triggers(api, type="triggerConverted")

    async def attributed() -> bool:
        return len(await attributions()) == 1

    await wait_for(attributed, 20, "the order attributed to the price drop")
    (converted,) = await attributions()
    assert converted["trigger"] == {
        "id": drop["id"],
        "type": "priceDrop",
        "createdAt": drop["createdAt"],
    }


async def test_a_site_key_view_tells_nobody(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01", price=100))
    cheap = seen("mallory@example.com", "WS01", price=0.01)
    assert (await api.event(cheap, site=True)).status_code == 200
    assert (await api.get("/v1/products/WS01")).status_code == 404
    assert await told(api, sync_redis, "priceDrop") == []


async def test_a_stitched_contact_is_told_once(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01"), seen("+380501112233", "WS01"))
    both = {
        "eventTypeKey": "pageViewed",
        "params": {"email": ANN, "phone": "+380501112233", "page": '{"location":"https://s.x/"}'},
    }
    await send(api, both)
    contact = await api.contact(ANN)
    await catalog(api, {"productId": "WS01", "price": 50, "currencyCode": "USD"})
    (trigger,) = await told(api, sync_redis, "priceDrop")
    assert trigger["contact"]["id"] == contact["id"]


async def test_a_price_drop_reaches_the_feed_and_the_webhooks(make_api, sync_redis, receiver):
    hook = {"url": receiver.url, "secret": "whsec_products", "types": ["priceDrop", "backInStock"]}
    api, _ = await make_api(webhooks=[hook])
    await view(api, seen(ANN, "WS01", stock=0))
    await catalog(api, {"productId": "WS01", "price": 50, "currencyCode": "USD", "isInStock": 1})
    await wait_for(lambda: len(receiver.requests) >= 2, 20, "two webhook requests")
    delivered = {json.loads(body)["type"] for _, body, _ in receiver.requests}
    assert delivered == {"priceDrop", "backInStock"}
    assert all(
        headers["x-gateway-signature"].startswith("sha256=") for headers, _, _ in receiver.requests
    )
    feed = await triggers(api)
    assert {t["type"] for t in feed} == {"priceDrop", "backInStock"}
    emitted = api.gateway.metrics.triggers_emitted
    await wait_for(lambda: emitted.get(api.tenant_id, "priceDrop") == 1, 20, "/metrics to count it")


async def test_every_watcher_of_a_long_fan_out_is_told_once(make_api, sync_redis):
    api, _ = await make_api()
    # one call: every watch has the same time, and the fan-out takes several steps (CHUNK)
    count = 2 * CHUNK + 100
    await view(api, *(seen(f"w{n}@example.com", "WS01", stock=0) for n in range(count)))
    await catalog(api, {"productId": "WS01", "price": 100, "currencyCode": "USD", "isInStock": 0})
    await catalog(api, {"productId": "WS01", "isInStock": 1})
    back = await told(api, sync_redis, "backInStock")
    assert len(back) == count
    assert {t["contact"]["email"] for t in back} == {f"w{n}@example.com" for n in range(count)}
    await catalog(api, {"productId": "WS01", "price": 50})
    drops = await told(api, sync_redis, "priceDrop")
    assert len(drops) == count and len({t["contact"]["email"] for t in drops}) == count
