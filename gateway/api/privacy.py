"""A contact's data handed over (docs/privacy.md): `GET /v1/contacts/{identifier}/export`."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.contacts import (
    contact_events,
    find_contact,
    read_contact,
    rfm,
)
from gateway.api.orders import order_document
from gateway.http import MAX_SCAN, PAGE, json_response, not_found
from gateway.redis.keys import TenantKeys
from gateway.state import GatewayState, server_principal


async def export_contact(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    contact_id = await find_contact(gateway.store, keys, request.path_params["identifier"])
    if contact_id is None:
        raise not_found("contact")
    store = gateway.store
    body = await read_contact(store, keys, contact_id)
    body["rfm"] = await rfm(store, keys, contact_id)
    # every event its list still names (the newest `contact_events`) that the stream still holds
    limit = gateway.settings.contact_events
    body["events"] = await contact_events(store, keys, contact_id, None, limit)
    orders = []
    for order_id in await store.contact_order_ids(keys, contact_id):
        order = await order_document(gateway, keys, order_id)
        if order is not None:
            orders.append(order)
    body["orders"] = orders
    body["triggers"] = await contact_triggers(gateway, keys, contact_id)
    return json_response(body)


async def contact_triggers(
    gateway: GatewayState, keys: TenantKeys, contact_id: str
) -> list[orjson.Fragment]:
    """The triggers emitted for the contact among the newest MAX_SCAN of the stream (a trigger
    names its contact's id as a JSON string), oldest first."""
    needle = orjson.dumps(contact_id)
    found: list[orjson.Fragment] = []
    last, scanned = "+", 0
    while scanned < MAX_SCAN:
        rows = await gateway.store.triggers_before(keys, last, PAGE)
        scanned += len(rows)
        found += [orjson.Fragment(f[b"trigger"]) for _, f in rows if needle in f[b"trigger"]]
        if len(rows) < PAGE:
            break
        last = "(" + rows[-1][0].decode()
    found.reverse()
    return found


routes = [
    Route("/v1/contacts/{identifier:text}/export", export_contact),
]
