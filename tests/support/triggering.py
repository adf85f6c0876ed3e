"""Helpers for the visit and trigger tests: event builders, waiting for triggers, a receiver."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.redis.constants import VISIT_FIELD
from gateway.redis.reads import fields_under
from tests.support.gateways import Api
from tests.support.waiting import wait_for

TIMEOUT = 0.5  # visit_timeout_seconds of most trigger tests
# visit_timeout_seconds of tests whose visit spans several requests: a busy machine can take
# longer than TIMEOUT between two of them, and the visit would close in the gap
SPANNING = 3.0


def open_visit(client: Any, api: Api, contact_id: str) -> dict[bytes, bytes]:
    """The contact's open visit: the VISIT_FIELDS of its hash, named without their prefix."""
    return fields_under(client.hgetall(api.keys.contact(contact_id)), VISIT_FIELD)


def page(who: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventTypeKey": "pageViewed",
        "keyValue": who,
        "params": [{"name": "page", "value": '{"location":"https://shop.example/"}'}],
        **extra,
    }


def product(who: str, product_id: str, price: float = 45.5, **extra: Any) -> dict[str, Any]:
    value = json.dumps({"productId": product_id, "price": price, "isInStock": 1})
    return {
        "eventTypeKey": "productViewed",
        "keyValue": who,
        "params": [{"name": "product", "value": value}, {"name": "currencyCode", "value": "USD"}],
        **extra,
    }


def category(who: str, category_id: str) -> dict[str, Any]:
    value = json.dumps({"productCategoryId": category_id})
    return {"eventTypeKey": "productCategoryViewed", "keyValue": who, "params": {"category": value}}


def cart(who: str, rsid: str, products: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "eventTypeKey": "cartUpdated",
        "keyValue": who,
        "params": {"products": json.dumps(products), "recycleStateId": rsid, "currencyCode": "USD"},
        **extra,
    }


async def send(api: Api, *bodies: dict[str, Any]) -> None:
    response = await api.events(list(bodies))
    assert response.status_code == 200 and not response.json()["failed"], response.text


async def triggers(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/v1/triggers", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["triggers"]
    return found


async def closed(api: Api, visits: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until `visits` visits of the tenant are closed; then its triggers."""
    await wait_for(
        lambda: api.gateway.metrics.visits_closed.get(api.tenant_id) >= visits,
        timeout,
        f"{visits} closed visits",
    )
    return await triggers(api)


@dataclass
class Receiver:
    """A real local HTTP server that records requests and answers with scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    server: asyncio.Server | None = None
    url: str = ""  # set by start()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Records a request only once it arrived whole: a client that gave up half-way (its
        timeout) delivered nothing, and retries."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers: dict[str, str] = {}
            for line in head.decode().split("\r\n")[1:]:
                if line:
                    name, _, value = line.partition(":")
                    name, value = name.strip().lower(), value.strip()
                    # A repeated header reads as one, its values comma-joined, as most
                    # frameworks have it: X-Gateway-Signature comes once per secret.
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((headers, body, time.time()))
            status = self.statuses.pop(0) if self.statuses else self.default
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client left first
        finally:
            writer.close()
