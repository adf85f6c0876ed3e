"""`GET /v1/carts/{recycleStateId}`: a cart state and whether an order converted it."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.clock import stored_iso
from gateway.http import json_response, not_found
from gateway.state import server_principal


async def get_cart(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    rsid = request.path_params["recycleStateId"]
    state = await gateway.store.cart_state(keys, rsid)
    if not state:
        raise not_found("cart state")
    order = state.get(b"order")
    # An order that came before its cart's cartUpdated leaves a state with only the order.
    contact = state.get(b"contact")
    cart = state.get(b"cart")
    return json_response(
        {
            "recycleStateId": rsid,
            "contactId": contact.decode() if contact else None,
            "cart": orjson.loads(cart) if cart else None,
            "updatedAt": stored_iso(state.get(b"at")),
            "converted": order is not None,
            "externalOrderId": order.decode() if order else None,
            "convertedAt": stored_iso(state.get(b"orderAt")),
        }
    )


routes = [Route("/v1/carts/{recycleStateId:text}", get_cart)]
