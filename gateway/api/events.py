"""`GET /v1/events`: the newest events of the tenant, or of one contact, optionally of one type,
paged back with `before` (`POST /v1/event` and `POST /v1/events` are the ingest path:
gateway/ingest/)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.contacts import contact_events, find_contact, tenant_events
from gateway.http import before_cursor, json_response, limit_param, not_found
from gateway.state import server_principal


async def list_events(request: Request) -> Response:
    state, principal = await server_principal(request)
    keys = state.tenant_keys(principal.tenant)
    limit = limit_param(request)
    event_type = request.query_params.get("type") or None
    identifier = request.query_params.get("contact")
    before = before_cursor(request)
    if identifier is None:
        found, cursor = await tenant_events(state.store, keys, event_type, limit, before)
    else:
        contact_id = await find_contact(state.store, keys, identifier)
        if contact_id is None:
            raise not_found("contact")
        found, cursor = await contact_events(
            state.store, keys, contact_id, event_type, limit, before
        )
    return json_response({"events": found, "next": cursor})


# GET and HEAD only (Starlette answers HEAD on every GET route, as HTTP wants): the ingest app
# takes the path's other methods.
routes = [Route("/v1/events", list_events)]
