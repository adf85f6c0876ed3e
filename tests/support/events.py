"""Event bodies the API tests send: a product view with an eventId, and a numbered good one."""

from __future__ import annotations

from typing import Any

import orjson


def viewed(email: str, product: str | None, event_id: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "email", "value": email}]
    if product is not None:
        params.append({"name": "product", "value": product})
    return {"eventTypeKey": "productViewed", "eventId": event_id, "params": params}


def good(n: int) -> dict[str, Any]:
    product = orjson.dumps({"productId": f"P{n}", "price": n}).decode()
    return viewed(f"buyer{n}@example.com", product, f"good-{n}")
