"""The destinations' dead letters (docs/destinations.md): `GET /v1/destinations/dead`, newest
first, and `POST /v1/destinations/dead/{id}/retry`, which queues one again; server keys only."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.clock import now_ms
from gateway.errors import ApiError
from gateway.http import (
    FEED_LIMIT,
    MAX_ID_PART,
    STREAM_ID,
    json_bytes,
    json_response,
    limit_param,
    not_found,
    stream_cursor,
)
from gateway.redis.arguments import DestinationRevive
from gateway.state import server_principal

KINDS = {b"e": "event", b"o": "order"}


async def dead_letters(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    limit = limit_param(request, default=FEED_LIMIT)
    last = "+"
    if request.query_params.get("before"):
        cursor, parts = stream_cursor(request, "before")
        if not any(parts):  # nothing is before 0-0
            return json_bytes(orjson.dumps({"dead": [], "next": None}))
        last = "(" + cursor
    rows = await gateway.store.destination_dead(keys, last, limit)
    urls = {d.id: d.url for d in principal.tenant.destinations}
    dead: list[dict[str, Any]] = []
    for stream_id, fields in rows:
        destination = fields[b"d"].decode()
        body = fields[b"b"]
        kind = KINDS.get(fields[b"k"], "event")
        dead.append(
            {
                "id": stream_id.decode(),
                "destination": destination,
                "url": urls.get(destination),  # None: no longer configured
                "kind": kind,
                **orjson.loads(fields[b"m"]),
                "body": orjson.Fragment(body),
            }
        )
    after = dead[-1]["id"] if len(dead) == limit else None
    return json_bytes(orjson.dumps({"dead": dead, "next": after}))


async def retry_dead_letter(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    dead_id = request.path_params["id"]
    found = STREAM_ID.fullmatch(dead_id)
    if not found or max(int(part or 0) for part in found.groups()) > MAX_ID_PART:
        raise not_found("dead letter")
    tenant = principal.tenant
    configured = ",".join(d.id for d in tenant.destinations)
    revive = DestinationRevive(gateway.tenant_keys(tenant).prefix, dead_id, configured)
    revived = await gateway.store.run("destination", revive, now_ms())
    if revived == 0:
        raise not_found("dead letter")
    if revived < 0:
        raise ApiError(
            409, "destination_gone", "The dead letter's destination is no longer configured.", "id"
        )
    return json_response({"id": dead_id, "status": "queued"}, 202)


routes = [
    Route("/v1/destinations/dead", dead_letters),
    Route("/v1/destinations/dead/{id}/retry", retry_dead_letter, methods=["POST"]),
]
