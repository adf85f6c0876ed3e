"""Who watches a product: reachable contacts that viewed it or have it in their cart, in the
product's watch index; an order ends a watch, stitching moves it.

The contract: docs/triggers.md, Price drops and back in stock.
"""

from __future__ import annotations

from tests.support.orders import order, post_orders
from tests.support.products import seen, view, watchers
from tests.support.triggering import cart, send

ANN = "ann@example.com"


async def test_a_reachable_view_watches_at_the_time_of_the_view(make_api, sync_redis):
    api, other = await make_api()
    await view(
        api, seen(ANN, "WS01"), {**seen("v-1", "WS01"), "keyValue": None, "visitorId": "v-1"}
    )
    contact = await api.contact(ANN)
    assert watchers(sync_redis, api, "WS01") == [contact["id"]]  # the visitor is anonymous
    index = api.keys.product("WS01", ":w")
    viewed = sync_redis.zscore(api.keys.contact(contact["id"], ":pv"), "WS01")
    assert sync_redis.zscore(index, contact["id"]) == viewed
    assert 0 < sync_redis.ttl(index) <= 30 * 86_400  # watch_days
    assert watchers(sync_redis, other, "WS01") == []


async def test_a_visitor_of_a_known_contact_watches(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, {**seen(ANN, "WS01"), "visitorId": "v-1"})
    await view(api, {**seen("v-1", "MUG"), "keyValue": None, "visitorId": "v-1"})
    assert watchers(sync_redis, api, "MUG") == [(await api.contact(ANN))["id"]]


async def test_an_order_ends_the_watch_and_a_new_view_starts_it(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01"), seen(ANN, "MUG"))
    await post_orders(api, order("o-1", email=ANN, items=[{"externalItemId": "WS01"}]))
    contact = await api.contact(ANN)
    assert watchers(sync_redis, api, "WS01") == []
    assert watchers(sync_redis, api, "MUG") == [contact["id"]]
    await view(api, seen(ANN, "WS01"))
    assert watchers(sync_redis, api, "WS01") == [contact["id"]]


async def test_a_cart_watches_and_sending_it_again_keeps_the_time(make_api, sync_redis):
    api, _ = await make_api()
    mug = [{"productId": "MUG", "quantity": 1, "price": 20}]
    await send(api, cart(ANN, "rs-1", mug))
    contact = await api.contact(ANN)
    index = api.keys.product("MUG", ":w")
    first = sync_redis.zscore(index, contact["id"])
    await send(api, cart(ANN, "rs-2", mug))
    assert sync_redis.zscore(index, contact["id"]) == first


async def test_stitching_moves_the_watch(make_api, sync_redis):
    api, _ = await make_api()
    await view(api, seen(ANN, "WS01"), seen("+380501112233", "WS01"))
    assert len(watchers(sync_redis, api, "WS01")) == 2
    both = {
        "eventTypeKey": "pageViewed",
        "params": {"email": ANN, "phone": "+380501112233", "page": '{"location":"https://s.x/"}'},
    }
    await send(api, both)
    assert watchers(sync_redis, api, "WS01") == [(await api.contact(ANN))["id"]]


async def test_watches_older_than_watch_days_are_dropped(make_api, sync_redis):
    api, _ = await make_api(triggers={"watch_days": 1})
    index = api.keys.product("WS01", ":w")
    sync_redis.zadd(index, {"gone": 1_000})  # a watch of 1970
    await view(api, seen(ANN, "WS01"))
    assert watchers(sync_redis, api, "WS01") == [(await api.contact(ANN))["id"]]
    assert 0 < sync_redis.pttl(index) <= 86_400_000
