"""`POST /v1/orders` (eSputnik's orders API: up to max_batch orders, each stored on its own) and
`GET /v1/orders/{externalOrderId}`, for server keys."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.contacts import requested_contact
from gateway.clock import iso, now_ms, stored_iso
from gateway.errors import INTERNAL_ERROR, not_stored
from gateway.http import json_response, not_found, read_batch
from gateway.model import orders
from gateway.redis.constants import ORDER_IDENTIFIERS
from gateway.redis.keys import TenantKeys
from gateway.redis.results import event_results
from gateway.state import GatewayState, server_principal

# Orders per script call: a call blocks Redis while it runs, so a 1000-order request is cut up.
# Each order is atomic on its own; a retry after a failure mid-way re-sends identical orders,
# which store nothing twice and emit no second trigger.
CHUNK = 100


async def post_orders(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    settings = gateway.settings
    batch = await read_batch(request, "orders", settings.max_body_bytes, settings.max_batch)
    tenant = principal.tenant
    now = now_ms()
    received = iso(now)
    failed: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []  # naming a suppressed identifier (docs/privacy.md)
    calls: list[bytes] = []
    placed: list[int] = []  # the index of each call's order
    for index, raw in enumerate(batch):
        errors, call = _prepare(raw, received, bool(tenant.destinations))
        if call is None:
            given = raw.get("externalOrderId") if isinstance(raw, dict) else None
            failed.append({"index": index, "externalOrderId": given, "errors": errors})
            gateway.metrics.orders_failed.inc(tenant.id, "invalid")
        else:
            calls.append(call)
            placed.append(index)
    limits = gateway.limits(tenant)
    for start in range(0, len(calls), CHUNK):
        replies = await gateway.store.run("orders", limits, now, calls[start : start + CHUNK])
        chunk = placed[start : start + CHUNK]
        for index, result in zip(chunk, event_results(replies), strict=True):
            if result.suppressed:
                given = batch[index]["externalOrderId"]
                ignored.append({"index": index, "externalOrderId": given, "reason": result.reason})
                gateway.metrics.suppressed_ignored.inc(tenant.id)
            elif result.failed is not None:  # Redis failed on this order alone (a damaged key)
                given = batch[index]["externalOrderId"]
                error = not_stored(result.failed, tenant=tenant.id, external_order_id=given)
                gateway.metrics.orders_failed.inc(tenant.id, INTERNAL_ERROR.code)
                entry = {"index": index, "externalOrderId": given, "errors": [error.message]}
                failed.append({**entry, "error": error.code, "id": error.error_id})
            elif result.order_status is not None:  # every other order is stored
                gateway.metrics.orders_stored.inc(tenant.id, result.order_status, "orders")
    failed.sort(key=lambda entry: int(entry["index"]))  # in index order: the invalid came first
    answer: dict[str, Any] = {"failedOrders": failed}
    if ignored:
        answer["ignored"] = ignored
    return json_response(answer)


def _prepare(raw: Any, received: str, forward: bool) -> tuple[list[str], bytes | None]:
    """(every reason the order fails, or the script's JSON for it); `forward`: the tenant's
    destinations are sent the order as received (docs/destinations.md)."""
    if not isinstance(raw, dict):
        return ["The order must be a JSON object."], None
    checked = orders.check(raw)
    errors = [message for _, message in checked.errors]
    errors += [f"{name} is required." for name in checked.missing]
    named = any(checked.value(name) is not None for name in orders.CONTACT_FIELDS)
    if not named and not any(e[0] in orders.CONTACT_FIELDS for e in checked.errors):
        errors.append("One of externalCustomerId, email, phone is required.")
    if errors:
        return errors, None
    call = {
        "nc": secrets.token_hex(8),
        "order": orders.envelope(checked, "put", "orders", received),
    }
    if forward:
        call["fwd"] = orjson.dumps(raw).decode()
    return [], orjson.dumps(call)


async def get_order(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    order_id = request.path_params["externalOrderId"]
    body = await order_document(gateway, keys, order_id)
    if body is None:
        raise not_found("order")
    return json_response(body)


async def order_document(
    gateway: GatewayState, keys: TenantKeys, order_id: str
) -> dict[str, Any] | None:
    """An order as GET /v1/orders/{id} answers it (also in a contact's export); None: none."""
    record = await gateway.store.order_record(keys, order_id)
    meta, fields, history = record.meta, record.fields, record.history
    if not meta:
        return None
    order = {name.decode(): orjson.loads(value) for name, value in fields.items()}
    cart = meta.get(b"cart")
    stored = meta.get(b"contact")  # none once its contact is erased (docs/privacy.md)
    return {
        "externalOrderId": order_id,
        "orderId": meta[b"oid"].decode(),
        "status": meta[b"status"].decode(),
        "contactId": stored and await _contact(gateway, keys, order, stored.decode()),
        "convertedCart": cart.decode() if cart else None,
        "createdAt": stored_iso(meta.get(b"created")),
        "updatedAt": stored_iso(meta.get(b"updated")),
        "order": order,
        "history": [orjson.loads(entry) for entry in history],
    }


async def contact_orders(gateway: GatewayState, keys: TenantKeys, contact_id: str) -> list[Any]:
    """The contact's orders as GET /v1/orders/{id} answers each, by externalOrderId."""
    found = []
    for order_id in await gateway.store.contact_order_ids(keys, contact_id):
        order = await order_document(gateway, keys, order_id)
        if order is not None:
            found.append(order)
    return found


async def get_contact_orders(request: Request) -> Response:
    """`GET /v1/contacts/{identifier}/orders`: the contact's orders, newest first."""
    gateway, keys, contact_id = await requested_contact(request)
    found = await contact_orders(gateway, keys, contact_id)
    found.sort(key=lambda order: (order["createdAt"] or "", order["externalOrderId"]), reverse=True)
    return json_response({"orders": found})


async def _contact(
    gateway: GatewayState, keys: TenantKeys, order: dict[str, Any], stored: str
) -> str:
    """The order's contact now: stitching may have merged the one it was stored with."""
    wanted = [(kind, str(order[name])) for name, kind in ORDER_IDENTIFIERS.items() if name in order]
    for contact_id in await gateway.store.named_contacts(keys, wanted):
        if contact_id is not None:
            return contact_id
    return stored


routes = [
    Route("/v1/orders", post_orders, methods=["POST"]),
    Route("/v1/orders/{externalOrderId:text}", get_order),
    Route("/v1/contacts/{identifier:text}/orders", get_contact_orders),
]
