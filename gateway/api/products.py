"""`POST /v1/products` (the shop's catalog: up to max_batch products, each stored on its own) and
`GET /v1/products/{productId}`, for server keys only: the catalog decides who is told of a price
drop, so a site key, which anybody can read from a page, must not change it (docs/api.md)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.clock import now_ms, stored_iso
from gateway.errors import INTERNAL_ERROR, not_stored
from gateway.http import json_response, not_found, read_batch
from gateway.model import products
from gateway.redis.arguments import CatalogArgs
from gateway.redis.results import event_results
from gateway.state import server_principal

# Products per script call: each is a few commands, so this bounds a call to a few milliseconds.
CHUNK = 200


async def post_products(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    settings = gateway.settings
    batch = await read_batch(request, "products", settings.max_body_bytes, settings.max_batch)
    tenant = principal.tenant
    failed: list[dict[str, Any]] = []
    items: list[bytes] = []
    placed: list[int] = []  # the index of each item's product
    for index, raw in enumerate(batch):
        errors, item = products.check(raw, f"products[{index}]")
        if item is None:
            failed.append(_failure(index, raw, errors))
        else:
            items.append(orjson.dumps(item))
            placed.append(index)
    call = CatalogArgs(gateway.tenant_keys(tenant).prefix)
    updated = 0
    for start in range(0, len(items), CHUNK):
        replies = await gateway.store.run("products", call, now_ms(), items[start : start + CHUNK])
        for index, result in zip(
            placed[start : start + CHUNK], event_results(replies), strict=True
        ):
            if result.failed is None:
                updated += 1
                continue
            error = not_stored(result.failed, tenant=tenant.id, index=index)
            failure = _failure(index, batch[index], [("products", INTERNAL_ERROR.message)])
            failed.append({**failure, "error": error.code, "id": error.error_id})
    if updated:
        gateway.fanout_queued.set()  # a fall in price or a return to stock may have been queued
    failed.sort(key=lambda entry: int(entry["index"]))
    if failed and not updated:  # nothing stored: no 2xx (docs/api.md, Products)
        # Redis failing on one (a damaged key) is the gateway's fault: a 500 naming its log entry
        internal = [entry for entry in failed if "error" in entry]
        first = (internal or failed)[0]
        body = {"error": first.get("error", "invalid_field"), "message": first["errors"][0]}
        body |= {"id": first["id"]} if internal else {"field": first["fields"][0]}
        status = 500 if internal else 400
        return json_response({**body, "updated": 0, "failed": failed}, status=status)
    return json_response({"updated": updated, "failed": failed})


def _failure(index: int, raw: Any, errors: list[tuple[str, str]]) -> dict[str, Any]:
    given = raw.get("productId") if isinstance(raw, dict) else None
    return {
        "index": index,
        "productId": given,
        "errors": [message for _, message in errors],
        "fields": [field for field, _ in errors],
    }


async def get_product(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    stored = await gateway.store.product(keys, request.path_params["productId"])
    if not stored:
        raise not_found("product")
    state = {name.decode(): orjson.loads(value) for name, value in stored.items()}
    state[products.UPDATED_AT] = stored_iso(stored[products.UPDATED_AT.encode()])
    return json_response(state)


routes = [
    Route("/v1/products", post_products, methods=["POST"]),
    Route("/v1/products/{productId:text}", get_product),
]
