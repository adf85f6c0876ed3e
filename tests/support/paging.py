"""Reading a newest-first listing to its end: `GET /v1/events` and `GET /v1/triggers?before=`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.gateways import Api


async def pages_before(
    api: Api, path: str, query: str, items: Callable[[dict[str, Any]], list[str]]
) -> list[list[str]]:
    """`items` of every page of `path?query`, passing each answer's `next` on as `before` until
    it is null."""
    found: list[list[str]] = []
    cursor = ""
    while True:
        answer = await api.get(f"{path}?{query}&before={cursor}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found.append(items(body))
        if body["next"] is None:
            return found
        assert len(found) < 50, "next never became null"
        cursor = body["next"]
