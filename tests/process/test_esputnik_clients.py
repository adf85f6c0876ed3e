"""Existing eSputnik/Yespo clients, pointed at the gateway by changing only their host
(docs/api.md, Moving from eSputnik/Yespo): eSputnik's `…/api/v1/` paths, trailing slashes, Basic
auth with any user, and the field spellings real clients send. Over a real server, so the ingest
protocol's short way is what answers the ingest paths."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from esputnik.esputnik import ESputnikAPIAdaptor

from tests.support.gateways import free_port, start_gateway, stop_gateway, unique, write_config

pytestmark = pytest.mark.slow

SITE_ORIGIN = "https://shop.example"


class Served:
    def __init__(self, port: int, tenant: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.tenant = tenant
        self.server_key = f"sk_{tenant}"
        self.site_key = f"pk_{tenant}"

    def basic(self, user: str = "any-user") -> dict[str, str]:
        """eSputnik's auth: HTTP Basic, the API key as the password."""
        token = base64.b64encode(f"{user}:{self.server_key}".encode()).decode()
        return {"authorization": f"Basic {token}"}

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers=self.basic(), timeout=10)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.basic(), timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("esputnik")
    tenant = unique("esp")
    config = write_config(folder / "gateway.toml", [tenant])  # allows SITE_ORIGIN
    port = free_port()
    log = folder / "gateway.log"
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config), log=log)
    try:
        yield Served(port, tenant)
    finally:
        assert stop_gateway(process) == 0
        assert "Traceback" not in Path(log).read_text()


def page_view(email: str) -> dict[str, Any]:
    return {
        "eventTypeKey": "productViewed",
        "keyValue": email,
        "params": [{"name": "product", "value": '{"productId": "P1", "price": 10}'}],
    }


def client_order(order_id: str, email: str) -> dict[str, Any]:
    """An order as ok-esputnik's template writes it: eSputnik's own field names."""
    return {
        "externalOrderId": order_id,
        "externalCustomerId": f"cust-{order_id}",
        "totalCost": 105.5,
        "status": "INITIALIZED",
        "date": "2026-11-30T10:00:00",
        "email": email,
        "currency": "UAH",
        "taxes": 5.5,
        "restoreUrl": "https://shop.example/cart/restore",
        "statusDescription": "awaiting payment",
        "storeId": "kyiv-1",
        "source": "web",
        "items": [
            {
                "externalItemId": "P1",
                "name": "Socks",
                "quantity": 2,
                "cost": 50.0,
                "url": "https://shop.example/p1",
                "imageUrl": "https://shop.example/p1.png",
                "category": "apparel",
            }
        ],
    }


@pytest.mark.parametrize("path", ["/api/v1/event", "/api/v1/event/", "/v1/event/", "/v1/event"])
def test_every_spelling_of_the_event_path_stores_the_event(served: Served, path: str) -> None:
    email = f"{unique('spell')}@example.com"
    answer = served.post(path, page_view(email))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"
    stored = served.get(f"/api/v1/events/?contact={email}")
    assert stored.status_code == 200, stored.text
    assert [e["eventTypeKey"] for e in stored.json()["events"]] == ["productViewed"]


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/events/", "/v1/events/"])
def test_every_spelling_of_the_batch_path_stores_the_events(served: Served, path: str) -> None:
    emails = [f"{unique('batch')}@example.com" for _ in range(2)]
    answer = served.post(path, [page_view(email) for email in emails])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2, "duplicates": 0, "failed": []}
    for email in emails:
        assert served.get(f"/v1/contacts/{email}/").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/orders", "/v1/orders/"])
def test_orders_with_the_clients_field_spellings_keep_every_field(
    served: Served, path: str
) -> None:
    order_id = unique("order")
    email = f"{order_id}@example.com"
    answer = served.post(path, {"orders": [client_order(order_id, email)]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"failedOrders": []}
    stored = served.get(f"/api/v1/orders/{order_id}/")
    assert stored.status_code == 200, stored.text
    order = stored.json()["order"]
    for name in ("externalCustomerId", "taxes", "restoreUrl", "statusDescription", "storeId"):
        assert order[name] == client_order(order_id, email)[name]
    assert order["source"] == "web"
    assert order["items"][0]["imageUrl"] == "https://shop.example/p1.png"
    contact = served.get(f"/api/v1/contacts/{email}/").json()
    assert contact["identifiers"]["email"] == [email]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/triggers", "/api/v1/triggers/", "/api/v1/webhooks/dead/", "/v1/webhooks/dead/"],
)
def test_reads_answer_under_api_and_with_a_slash(served: Served, path: str) -> None:
    answer = served.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"


def test_an_unknown_cart_is_a_json_404_under_every_spelling(served: Served) -> None:
    for path in ("/api/v1/carts/none/", "/v1/carts/none/", "/api/v1/carts/none"):
        answer = served.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/api/v2/event", "/apiv1/event", "//v1/event", "/api/api/v1/event", "/v1/event//"]
)
def test_paths_that_merely_look_alike_stay_404(served: Served, path: str) -> None:
    email = f"{unique('alike')}@example.com"
    answer = served.post(path, page_view(email))
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"
    assert served.get(f"/v1/contacts/{email}").status_code == 404  # nothing stored


@pytest.mark.parametrize("path", ["/api/v1/event/", "/api/v1/events", "/v1/event/"])
def test_preflights_answer_on_every_spelling_for_site_keys(served: Served, path: str) -> None:
    answer = httpx.options(
        f"{served.base}{path}?key={served.site_key}",
        headers={"origin": SITE_ORIGIN, "access-control-request-method": "POST"},
    )
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == SITE_ORIGIN


def test_a_real_esputnik_client_library_sends_events_and_orders(served: Served) -> None:
    """ok-esputnik (PyPI), unchanged but for its host: it posts `{host}v1/event/` and
    `{host}v1/orders/` with Basic auth, its JSON as a string body."""
    client = ESputnikAPIAdaptor("shop-user", served.server_key, host=f"{served.base}/api/")
    email = f"{unique('lib')}@example.com"
    sent = client.event(
        {
            "event_type_key": "cartUpdated",
            "key_value": email,
            "params": [
                {"name": "recycleStateId", "value": unique("rsid")},
                {"name": "products", "value": '[{"productId": "P1", "price": 5, "quantity": 1}]'},
            ],
        }
    )
    assert sent.status_code == 200, sent.data
    assert sent.data["status"] == "accepted"
    order_id = unique("liborder")
    ordered = client.orders(
        {
            "orders": [
                {
                    "id": order_id,
                    "user_id": "c-17",
                    "total_cost": 5.0,
                    "status": "DELIVERED",
                    "date": "2026-11-30T10:00:00",
                    "email": email,
                    "store_id": "kyiv-1",
                    "items": [
                        {
                            "id": "P1",
                            "name": "Socks",
                            "quantity": 1,
                            "cost": 5.0,
                            "url": "https://shop.example/p1",
                            "image_url": "https://shop.example/p1.png",
                            "category": "apparel",
                        }
                    ],
                }
            ]
        }
    )
    assert ordered.status_code == 200, ordered.data
    assert ordered.data == {"failedOrders": []}
    order = served.get(f"/v1/orders/{order_id}").json()
    assert order["status"] == "DELIVERED"
    assert order["order"]["storeId"] == "kyiv-1"
    contact = served.get(f"/v1/contacts/{email}").json()
    assert contact["orders"]["count"] == 1
    events = served.get(f"/v1/events?contact={email}").json()["events"]
    assert [e["eventTypeKey"] for e in events] == ["cartUpdated"]


async def test_the_in_process_app_answers_the_same_spellings(api: Any) -> None:
    """Under another ASGI server the ingest paths take the ASGI entry: same spellings."""
    email = f"{unique('asgi')}@example.com"
    headers = api.server()
    sent = await api.http.post("/api/v1/event/", json=page_view(email), headers=headers)
    assert sent.status_code == 200, sent.text
    read = await api.http.get(f"/api/v1/contacts/{email}/", headers=headers)
    assert read.status_code == 200, read.text
    missing = await api.http.post("/api/v2/event", json=page_view(email), headers=headers)
    assert missing.status_code == 404
