"""RFM from DELIVERED orders, carts bought through recycleStateId or the purchase window,
GET /v1/carts, the visit's order counter and concurrency."""

from __future__ import annotations

import asyncio

import orjson

from tests.support.orders import cart_event, event, order, post_orders
from tests.support.triggering import open_visit


async def test_rfm_counts_delivered_orders_only(api):
    await post_orders(
        api,
        order("o-1", status="DELIVERED", totalCost=100, date="2024-01-01T10:00:00"),
        order("o-2", status="INITIALIZED", totalCost=1000),
        order("o-3", status="DELIVERED", totalCost="50.5", date="2024-03-01T10:00:00+02:00"),
        order("o-4", status="CANCELLED", totalCost=70),
    )
    rfm = (await api.contact("buyer@example.com"))["orders"]
    assert rfm == {
        "count": 2,
        "revenue": 150.5,
        "averageCheck": 75.25,
        "lastOrderDate": "2024-03-01T10:00:00+02:00",
    }
    await post_orders(api, order("o-2", status="DELIVERED", totalCost=1000))
    rfm = (await api.contact("buyer@example.com"))["orders"]
    assert (rfm["count"], rfm["revenue"], rfm["lastOrderDate"]) == (
        3,
        1150.5,
        "2024-05-14T10:11:00",
    )


async def figures(api, who="buyer@example.com"):
    rfm = (await api.contact(who))["orders"]
    return rfm["count"], rfm["revenue"], rfm["lastOrderDate"]


async def test_figures_follow_the_current_status_total_and_date(api):
    await post_orders(
        api, order("o-1", status="DELIVERED", totalCost=80, date="2024-01-01T10:00:00")
    )
    await post_orders(
        api, order("o-2", status="DELIVERED", totalCost=20, date="2024-02-01T10:00:00")
    )
    assert await figures(api) == (2, 100.0, "2024-02-01T10:00:00")
    # a corrected total and date of a DELIVERED order replace what it counted with
    await post_orders(
        api, order("o-2", status="DELIVERED", totalCost=50, date="2023-12-01T10:00:00")
    )
    assert await figures(api) == (2, 130.0, "2024-01-01T10:00:00")
    await api.event(event("orderUpdated", externalOrderId="o-2", totalCost="60.5"))
    assert await figures(api) == (2, 140.5, "2024-01-01T10:00:00")
    # a CANCELLED (or any status but DELIVERED) takes the order out, DELIVERED again brings it back
    await post_orders(api, order("o-1", status="CANCELLED", totalCost=80))
    assert await figures(api) == (1, 60.5, "2023-12-01T10:00:00")
    await post_orders(api, order("o-1", status="DELIVERED", totalCost=80))
    assert await figures(api) == (2, 140.5, "2024-05-14T10:11:00")
    await post_orders(api, order("o-1", status="IN_PROGRESS"))
    cancelled = await api.event(event("orderCancelled", externalOrderId="o-2"))
    assert cancelled.json()["status"] == "accepted"
    assert await figures(api) == (0, 0.0, None)
    assert (await api.contact("buyer@example.com"))["orders"]["averageCheck"] == 0


async def test_a_retried_delivery_counts_once(api):
    delivered = order("o-1", status="DELIVERED", totalCost=80)
    await post_orders(api, delivered)
    await post_orders(api, delivered)
    await asyncio.gather(*[post_orders(api, {**delivered, "totalCost": 90}) for _ in range(10)])
    assert await figures(api) == (1, 90.0, "2024-05-14T10:11:00")


async def test_an_order_moved_to_another_contact_takes_its_figures_along(api):
    await api.event(event("login", key_value="other@example.com"))  # a contact of its own
    await post_orders(api, order("o-1", status="DELIVERED", totalCost=80))
    await post_orders(
        api, order("o-1", status="DELIVERED", totalCost=80, email="other@example.com")
    )
    assert await figures(api) == (0, 0.0, None)
    assert await figures(api, "other@example.com") == (1, 80.0, "2024-05-14T10:11:00")


async def test_a_contact_without_orders_has_zero_figures(api):
    await api.event(event("login"))
    rfm = (await api.contact("buyer@example.com"))["orders"]
    assert rfm == {"count": 0, "revenue": 0.0, "averageCheck": 0, "lastOrderDate": None}


async def test_stitching_keeps_the_orders_of_both_contacts(api):
    await post_orders(api, order("o-1", status="DELIVERED", totalCost=10))
    await post_orders(
        api, order("o-2", status="DELIVERED", totalCost=20, email=None, phone="+380501234567")
    )
    await api.event(event("login", Phone="+380501234567"))  # email and phone seen together
    contact = await api.contact("+380501234567")
    assert contact["orders"]["count"] == 2
    assert contact["orders"]["revenue"] == 30.0
    assert (await api.get("/v1/orders/o-2")).json()["contactId"] == contact["id"]
    # the stitched contact's orders are its own now: cancelling one takes it out of its figures
    await post_orders(api, order("o-1", status="CANCELLED", totalCost=10))
    await post_orders(
        api, order("o-2", status="DELIVERED", totalCost=25, email=None, phone="+380501234567")
    )
    assert await figures(api, "+380501234567") == (1, 25.0, "2024-05-14T10:11:00")


async def test_an_order_with_the_recycle_state_id_converts_that_cart(api):
    await api.event(cart_event("rs-1", key_value="anon@example.com"))
    await api.event(cart_event("rs-2", key_value="anon@example.com"))
    assert (await api.contact("anon@example.com"))["cart"]["recycleStateId"] == "rs-2"
    # another contact's order (no stitching) still converts the state it names
    await post_orders(api, order("o-1", recycleStateId="rs-2"))
    cart = (await api.get("/v1/carts/rs-2")).json()
    assert (cart["converted"], cart["externalOrderId"]) == (True, "o-1")
    assert cart["cart"]["products"][0]["productId"] == "WS01"
    assert cart["contactId"] == (await api.contact("anon@example.com"))["id"]
    assert (await api.contact("anon@example.com"))["cart"] is None
    earlier = (await api.get("/v1/carts/rs-1")).json()
    assert (earlier["converted"], earlier["externalOrderId"]) == (False, None)
    assert (await api.get("/v1/orders/o-1")).json()["convertedCart"] == "rs-2"


async def test_the_recycle_state_id_may_come_as_an_event_param(api):
    await api.event(cart_event("rs-1"))
    body = event(
        "orderCreated",
        externalOrderId="o-1",
        totalCost=45.5,
        status="IN_PROGRESS",
        date="2024-05-14T10:11:00",
        recycleStateId="rs-1",
    )
    assert (await api.event(body)).json()["status"] == "accepted"
    assert (await api.get("/v1/carts/rs-1")).json()["externalOrderId"] == "o-1"
    assert (await api.contact("buyer@example.com"))["cart"] is None


async def test_an_order_within_the_window_converts_the_contacts_cart(api):
    await api.event(cart_event("rs-1"))
    await post_orders(api, order("o-1"))
    assert (await api.get("/v1/carts/rs-1")).json()["externalOrderId"] == "o-1"
    assert (await api.contact("buyer@example.com"))["cart"] is None
    # a later update of the same order does not buy the next cart
    await api.event(cart_event("rs-2"))
    await post_orders(api, order("o-1", status="DELIVERED"))
    assert (await api.get("/v1/carts/rs-2")).json()["converted"] is False
    assert (await api.contact("buyer@example.com"))["cart"]["recycleStateId"] == "rs-2"


async def test_an_order_after_the_window_does_not_convert(make_api):
    api, _ = await make_api(cart_purchase_window_seconds=0.2)
    await api.event(cart_event("rs-1"))
    await asyncio.sleep(0.3)
    await post_orders(api, order("o-1"))
    assert (await api.get("/v1/carts/rs-1")).json()["converted"] is False
    assert (await api.contact("buyer@example.com"))["cart"]["recycleStateId"] == "rs-1"


async def test_cancelled_orders_do_not_convert(api):
    await api.event(cart_event("rs-1"))
    await post_orders(
        api,
        order("o-1", status="CANCELLED"),
        order("o-2", status="CANCELLED", recycleStateId="rs-1"),
    )
    assert (await api.get("/v1/carts/rs-1")).json()["converted"] is False
    assert (await api.contact("buyer@example.com"))["cart"]["recycleStateId"] == "rs-1"


async def test_carts_need_a_server_key_and_unknown_ones_are_404(api):
    await api.event(cart_event("rs-1"))
    assert (await api.get("/v1/carts/never-seen")).status_code == 404
    site = await api.http.get("/v1/carts/rs-1", headers={"authorization": f"Bearer {api.site_key}"})
    assert site.status_code == 403


async def test_orders_count_in_the_open_visit_only(api, sync_redis):
    await post_orders(api, order("o-0", email="quiet@example.com"))
    quiet = (await api.contact("quiet@example.com"))["id"]
    assert open_visit(sync_redis, api, quiet) == {}  # a back-end order opens none
    page = orjson.dumps({"location": "https://shop.example/"}).decode()
    await api.event(event("pageViewed", page=page))
    await post_orders(api, order("o-1"))
    contact = (await api.contact("buyer@example.com"))["id"]
    visit = open_visit(sync_redis, api, contact)
    assert (visit[b"o"], visit[b"n"]) == (b"1", b"1")


async def test_concurrent_requests_lose_no_update(api, sync_redis):
    await post_orders(api, order("o-1"))

    async def update(i):
        body = event("orderUpdated", externalOrderId="o-1", **{f"field{i}": i})
        assert (await api.event(body)).json()["status"] == "accepted"

    async def deliver(i):
        await post_orders(api, order(f"d-{i}", status="DELIVERED", totalCost=i))

    await asyncio.gather(*[update(i) for i in range(30)], *[deliver(i) for i in range(1, 31)])
    stored = (await api.get("/v1/orders/o-1")).json()["order"]
    assert all(stored[f"field{i}"] == i for i in range(30))
    rfm = (await api.contact("buyer@example.com"))["orders"]
    assert (rfm["count"], rfm["revenue"]) == (30, float(sum(range(1, 31))))
    # the same order delivered by many requests at once counts once
    await asyncio.gather(
        *[api.event(event("orderDelivered", externalOrderId="o-1")) for _ in range(20)]
    )
    assert (await api.contact("buyer@example.com"))["orders"]["count"] == 31


async def test_a_bought_cart_sent_again_does_not_come_back(api):
    await api.event(cart_event("rs-1"))
    await post_orders(api, order("o-1", recycleStateId="rs-1"))
    await api.event(cart_event("rs-1"))  # e.g. the thank-you page re-sends the last cart
    assert (await api.contact("buyer@example.com"))["cart"] is None
    assert (await api.get("/v1/carts/rs-1")).json()["externalOrderId"] == "o-1"


async def test_an_order_event_counts_in_the_visit_it_is_part_of(api, sync_redis):
    body = event(
        "orderCreated",
        externalOrderId="o-1",
        totalCost=1,
        status="INITIALIZED",
        date="2024-05-14T10:11:00",
    )
    assert (await api.event(body)).json()["status"] == "accepted"
    contact = (await api.contact("buyer@example.com"))["id"]
    assert open_visit(sync_redis, api, contact)[b"o"] == b"1"


async def test_an_order_before_its_cart_still_converts_it(api):
    # the order's back-end call can beat the cart's beacon: the state remembers the order first
    await post_orders(api, order("o-1", recycleStateId="rs-1"))
    early = await api.get("/v1/carts/rs-1")
    assert early.status_code == 200, early.text
    assert early.json() == {
        "recycleStateId": "rs-1",
        "contactId": None,
        "cart": None,
        "updatedAt": None,
        "converted": True,
        "externalOrderId": "o-1",
        "convertedAt": early.json()["convertedAt"],
    }
    assert early.json()["convertedAt"] is not None
    await api.event(cart_event("rs-1"))  # the late cartUpdated of the state just bought
    cart = (await api.get("/v1/carts/rs-1")).json()
    assert (cart["converted"], cart["externalOrderId"]) == (True, "o-1")
    assert cart["cart"]["products"][0]["productId"] == "WS01"
    assert cart["contactId"] == (await api.contact("buyer@example.com"))["id"]
    assert (await api.contact("buyer@example.com"))["cart"] is None
    assert (await api.get("/v1/orders/o-1")).json()["convertedCart"] == "rs-1"


async def test_a_second_order_with_a_bought_recycle_state_id_converts_nothing(api):
    await api.event(cart_event("rs-1"))
    await post_orders(api, order("o-1", recycleStateId="rs-1"))
    await post_orders(api, order("o-2", recycleStateId="rs-1"))
    await post_orders(api, order("o-2", status="DELIVERED", recycleStateId="rs-1"))
    assert (await api.get("/v1/carts/rs-1")).json()["externalOrderId"] == "o-1"
    assert (await api.get("/v1/orders/o-1")).json()["convertedCart"] == "rs-1"
    assert (await api.get("/v1/orders/o-2")).json()["convertedCart"] is None
    # the same holds when both orders come before the cart
    await post_orders(api, order("o-3", recycleStateId="rs-2"), order("o-4", recycleStateId="rs-2"))
    await api.event(cart_event("rs-2"))
    assert (await api.get("/v1/carts/rs-2")).json()["externalOrderId"] == "o-3"
    assert (await api.get("/v1/orders/o-4")).json()["convertedCart"] is None
