"""Small builders shared by the order tests."""

from __future__ import annotations

from typing import Any

import orjson


def order(external_id: str, status: str = "INITIALIZED", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "externalOrderId": external_id,
        "status": status,
        "totalCost": 100,
        "date": "2024-05-14T10:11:00",
        "email": "buyer@example.com",
    }
    body.update(fields)
    return body


async def post_orders(api: Any, *orders: dict[str, Any]) -> dict[str, Any]:
    response = await api.http.post(
        "/v1/orders", json={"orders": list(orders)}, headers=api.server()
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def event(
    event_type: str, key_value: str | None = "buyer@example.com", **params: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventTypeKey": event_type,
        "params": [{"name": k, "value": v} for k, v in params.items()],
    }
    if key_value is not None:
        body["keyValue"] = key_value
    return body


def cart_event(
    rsid: str, key_value: str = "buyer@example.com", price: float = 45.5
) -> dict[str, Any]:
    products = [{"productId": "WS01", "quantity": 1, "price": price}]
    return event(
        "cartUpdated", key_value, products=orjson.dumps(products).decode(), recycleStateId=rsid
    )


def triggers(sync_redis: Any, api: Any) -> list[dict[str, Any]]:
    """The tenant's trigger stream as a consumer reads it."""
    rows = sync_redis.xrange(api.keys.triggers)
    found = []
    for _, fields in rows:
        trigger = orjson.loads(fields[b"trigger"])
        assert fields[b"type"].decode() == trigger["type"]
        found.append(trigger)
    return found
