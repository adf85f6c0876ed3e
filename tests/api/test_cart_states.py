"""GET /v1/carts shows every cart state's cart, the contact's current one included, although
Redis keeps a cart's JSON once: in the contact while it is the current cart, in its state once
it is not (replaced, emptied, bought, or left behind by stitching)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.orders import cart_event, event, order, post_orders


async def cart_of(api: Any, rsid: str) -> Any:
    answer = await api.get(f"/v1/carts/{rsid}")
    assert answer.status_code == 200, answer.text
    return answer.json()["cart"]


async def test_every_state_shows_its_own_cart(api):
    await api.event(cart_event("rs-1", price=10))
    assert (await cart_of(api, "rs-1"))["total"] == 10
    await api.event(cart_event("rs-2", price=20))
    await api.event(cart_event("rs-2", price=25))  # the same state, updated
    assert (await cart_of(api, "rs-1"))["total"] == 10
    assert (await cart_of(api, "rs-2"))["total"] == 25
    assert (await api.contact("buyer@example.com"))["cart"]["total"] == 25
    emptied = event("cartUpdated", products="[]", recycleStateId="rs-3")
    assert (await api.event(emptied)).status_code == 200
    assert (await api.contact("buyer@example.com"))["cart"] is None
    assert (await cart_of(api, "rs-2"))["total"] == 25
    assert (await cart_of(api, "rs-3"))["products"] == []


async def test_a_bought_cart_keeps_its_cart(api):
    await api.event(cart_event("rs-1", price=30))
    await post_orders(api, order("o-1", recycleStateId="rs-1"))
    assert (await api.contact("buyer@example.com"))["cart"] is None
    state = (await api.get("/v1/carts/rs-1")).json()
    assert (state["converted"], state["cart"]["total"]) == (True, 30)


async def test_stitching_keeps_the_cart_of_each_state(api):
    # a visitor's cart, then a newer one of the known contact: the newer stays current
    await api.event(cart_event("rs-old", key_value=None) | {"visitorId": "v-1"})
    await asyncio.sleep(0.01)  # carts compare by their time in ms
    await api.event(cart_event("rs-new", price=70))
    await api.event(event("login") | {"visitorId": "v-1"})
    merged = await api.contact("buyer@example.com")
    assert (await api.contact("v-1"))["id"] == merged["id"]
    assert merged["cart"]["recycleStateId"] == "rs-new"
    assert (await cart_of(api, "rs-old"))["total"] == 45.5
    assert (await cart_of(api, "rs-new"))["total"] == 70
    # and the other way round: the stitched-in visitor's cart is newer
    await api.event(cart_event("rs-known", key_value="ann@example.com", price=5))
    await asyncio.sleep(0.01)
    await api.event(cart_event("rs-visitor", key_value=None, price=6) | {"visitorId": "v-2"})
    await api.event(event("login", key_value="ann@example.com") | {"visitorId": "v-2"})
    assert (await api.contact("ann@example.com"))["cart"]["recycleStateId"] == "rs-visitor"
    assert (await cart_of(api, "rs-known"))["total"] == 5
    assert (await cart_of(api, "rs-visitor"))["total"] == 6


async def test_the_current_cart_is_stored_once(api, sync_redis):
    await api.event(cart_event("rs-1"))
    cid = (await api.contact("buyer@example.com"))["id"]
    assert sync_redis.hget(api.keys.contact(cid), "cart") is not None
    assert sync_redis.hget(api.keys.cart("rs-1"), "cart") is None
    await api.event(cart_event("rs-2"))
    assert sync_redis.hget(api.keys.cart("rs-1"), "cart") is not None
    assert sync_redis.hget(api.keys.cart("rs-2"), "cart") is None


async def test_a_state_that_may_outlive_its_contact_keeps_a_copy(make_api, sync_redis):
    api, _ = await make_api(gateway={"contact_ttl_seconds": 3600, "cart_ttl_seconds": 7200})
    await api.event(cart_event("rs-1", price=12))
    assert sync_redis.hget(api.keys.cart("rs-1"), "cart") is not None
    assert (await cart_of(api, "rs-1"))["total"] == 12
