"""POST /v1/products and GET /v1/products/{productId}: the catalog, its bad input, its keys.

The contract: docs/api.md, Products.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.gateways import Api

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def post(api: Api, *products: Any, site: bool = False) -> httpx.Response:
    if site:
        return await api.http.post(
            f"/v1/products?key={api.site_key}",
            json={"products": list(products)},
            headers={"origin": "https://shop.example"},
        )
    return await api.http.post(
        "/v1/products", json={"products": list(products)}, headers=api.server()
    )


async def test_a_product_is_stored_with_its_extra_fields_and_read_back(make_api):
    api, other = await make_api()
    sent = {
        "productId": "WS01",
        "price": 45.5,
        "currencyCode": "usd",
        "isInStock": 1,
        "name": "Shirt",
    }
    response = await post(api, sent)
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 1, "failed": []}
    stored = (await api.get("/v1/products/WS01")).json()
    assert ISO.match(stored.pop("updatedAt"))
    assert stored == {**sent, "currencyCode": "USD"}
    assert (await other.get("/v1/products/WS01")).status_code == 404  # another tenant's catalog


async def test_fields_not_sent_are_kept(make_api):
    api, _ = await make_api()
    await post(api, {"productId": "WS01", "price": 45.5, "currencyCode": "USD", "isInStock": 1})
    response = await post(api, {"productId": "WS01", "isInStock": "0"})
    assert response.json() == {"updated": 1, "failed": []}
    stored = (await api.get("/v1/products/WS01")).json()
    assert (stored["price"], stored["currencyCode"], stored["isInStock"]) == (45.5, "USD", 0)


async def test_bad_entries_fail_alone_naming_index_and_field(make_api):
    api, _ = await make_api()
    response = await post(
        api,
        {"price": 1},
        {"productId": "GOOD", "price": 3, "isInStock": 1},
        {"productId": "NEG", "price": -1},
        {"productId": "TXT", "price": "cheap"},
        {"productId": "STOCK", "isInStock": 2},
        {"productId": "CUR", "currencyCode": "US"},
        "not an object",
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["updated"] == 1
    failed = {entry["index"]: entry for entry in answer["failed"]}
    assert sorted(failed) == [0, 2, 3, 4, 5, 6]
    assert failed[0]["fields"] == ["products[0].productId"]
    assert failed[2]["fields"] == ["products[2].price"]
    assert failed[3]["fields"] == ["products[3].price"]
    assert failed[4]["fields"] == ["products[4].isInStock"]
    assert failed[5]["fields"] == ["products[5].currencyCode"]
    assert failed[6]["fields"] == ["products[6]"]
    assert all(e["errors"] and e["fields"][0] in e["errors"][0] for e in failed.values())
    assert (await api.get("/v1/products/GOOD")).status_code == 200
    for product_id in ("NEG", "TXT", "STOCK", "CUR"):
        assert (await api.get(f"/v1/products/{product_id}")).status_code == 404


async def test_nothing_stored_is_a_400(make_api):
    api, _ = await make_api()
    response = await post(api, {"productId": "NEG", "price": -1})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "products[0].price" and body["updated"] == 0
    assert (await api.get("/v1/products/NEG")).status_code == 404


async def test_a_body_that_is_not_a_products_list_is_a_400(make_api):
    api, _ = await make_api()
    for body in ([{"productId": "A"}], {"products": {"productId": "A"}}, {"items": []}):
        response = await api.http.post("/v1/products", json=body, headers=api.server())
        assert response.status_code == 400
        assert response.json()["field"] == "products"


async def test_more_than_max_batch_is_a_413(make_api):
    api, _ = await make_api(gateway={"max_batch": 2})
    response = await post(api, *({"productId": f"P{n}", "price": 1} for n in range(3)))
    assert response.status_code == 413
    assert (await api.get("/v1/products/P0")).status_code == 404


async def test_a_site_key_cannot_change_or_read_the_catalog(make_api):
    api, _ = await make_api()
    await post(api, {"productId": "WS01", "price": 45.5, "currencyCode": "USD"})
    response = await post(api, {"productId": "WS01", "price": 0.01}, site=True)
    assert response.status_code == 403
    read = await api.http.get(
        f"/v1/products/WS01?key={api.site_key}", headers={"origin": "https://shop.example"}
    )
    assert read.status_code == 403
    assert (await api.get("/v1/products/WS01")).json()["price"] == 45.5


async def test_a_damaged_key_fails_its_product_alone(make_api, sync_redis):
    api, _ = await make_api()
    sync_redis.set(api.keys.product("BROKEN"), "not a hash")
    response = await post(
        api, {"productId": "BROKEN", "price": 1}, {"productId": "FINE", "price": 1}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["updated"] == 1
    (failure,) = answer["failed"]
    assert failure["index"] == 0 and failure["error"] == "internal_error" and failure["id"]
    alone = await post(api, {"productId": "BROKEN", "price": 1})
    assert alone.status_code == 500
    assert alone.json()["error"] == "internal_error" and alone.json()["id"]


async def test_too_many_fields_is_refused(make_api):
    api, _ = await make_api()
    response = await post(api, {"productId": "WIDE", **{f"f{n}": n for n in range(300)}})
    assert response.status_code == 400 and response.json()["field"] == "products[0]"
