"""Helpers for the catalog and product-watch tests: views, carts, catalog changes, waiting for
the fan-out to finish."""

from __future__ import annotations

import json
from typing import Any

from tests.support.gateways import Api
from tests.support.triggering import send, triggers
from tests.support.waiting import wait_for


def seen(
    who: str, product_id: str, price: float = 100, currency: str | None = "USD", stock: int = 1
) -> dict[str, Any]:
    """A productViewed of `who` (keyValue), with the price, currency and stock it saw."""
    params: list[dict[str, Any]] = [
        {
            "name": "product",
            "value": json.dumps({"productId": product_id, "price": price, "isInStock": stock}),
        }
    ]
    if currency is not None:
        params.append({"name": "currencyCode", "value": currency})
    return {"eventTypeKey": "productViewed", "keyValue": who, "params": params}


async def view(api: Api, *bodies: dict[str, Any]) -> None:
    await send(api, *bodies)


async def catalog(api: Api, *products: dict[str, Any]) -> None:
    response = await api.http.post(
        "/v1/products", json={"products": list(products)}, headers=api.server()
    )
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == [], response.text


async def fanned_out(api: Api, sync_redis: Any, timeout: float = 20.0) -> None:
    """Wait until no fan-out of the tenant is queued or under way."""
    await wait_for(
        lambda: sync_redis.zcard(api.keys.fanouts) == 0, timeout, "the fan-outs to finish"
    )


async def told(api: Api, sync_redis: Any, kind: str) -> list[dict[str, Any]]:
    """The tenant's triggers of `kind` once every fan-out is done."""
    await fanned_out(api, sync_redis)
    return await triggers(api, type=kind)


def watchers(sync_redis: Any, api: Api, product_id: str) -> list[str]:
    return [
        member.decode() for member in sync_redis.zrange(api.keys.product(product_id, ":w"), 0, -1)
    ]
