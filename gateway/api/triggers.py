"""The trigger feed, `GET /v1/triggers` (oldest first after a cursor, or newest first before one),
and the webhooks' dead letters, `GET /v1/webhooks/dead` (the triggers themselves are made and
delivered by gateway/background/)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.deliveries import deliveries
from gateway.api.paging import newest_first
from gateway.errors import invalid
from gateway.http import (
    FEED_LIMIT,
    LAST_STREAM_ID,
    MAX_SCAN,
    PAGE,
    before_cursor,
    json_bytes,
    limit_param,
    stream_cursor,
)
from gateway.model.events import EVENT_TYPE
from gateway.redaction import redacted
from gateway.redis.keys import TenantKeys
from gateway.redis.reads import StreamEntry
from gateway.redis.store import Store
from gateway.state import server_principal


async def list_triggers(request: Request) -> Response:
    """Triggers after the cursor `after`, oldest first, or with `before` (empty: from the newest)
    before it, newest first; `next` is the cursor to pass on (a stream id; null once `before`
    reached the stream's start). Each carries its `deliveries` (deliveries.py)."""
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    limit = limit_param(request, default=FEED_LIMIT)
    wanted = request.query_params.get("type") or None
    if wanted is not None and not EVENT_TYPE.fullmatch(wanted):
        raise invalid("type", "type must be a trigger type such as abandonedCart.")
    if "before" in request.query_params:
        if "after" in request.query_params:
            raise invalid("before", "Give after (oldest first) or before (newest first), not both.")
        rows, cursor = await newest_first(
            lambda last, count: gateway.store.triggers_before(keys, last, count),
            before_cursor(request),
            None if wanted is None else lambda fields: fields.get(b"type") == wanted.encode(),
            limit,
        )
    else:
        rows, cursor = await oldest_first(gateway.store, keys, request, wanted, limit)
    states = await deliveries(gateway, principal.tenant, keys, rows)
    found = [
        {**orjson.loads(fields[b"trigger"]), "deliveries": delivered}
        for (_, fields), delivered in zip(rows, states, strict=True)
    ]
    return json_bytes(orjson.dumps({"triggers": found, "next": cursor}))


async def oldest_first(
    store: Store, keys: TenantKeys, request: Request, wanted: str | None, limit: int
) -> tuple[list[StreamEntry], str]:
    after, last = stream_cursor(request, "after")
    found: list[StreamEntry] = []
    cursor = after
    scanned = 0
    # Nothing follows the largest id (for which XRANGE refuses an exclusive start).
    while len(found) < limit and scanned < MAX_SCAN and last != LAST_STREAM_ID:
        count = limit if wanted is None else PAGE
        rows = await store.triggers_after(keys, "(" + cursor, count)
        scanned += len(rows)
        for row in rows:
            cursor = row[0].decode()
            if wanted is None or row[1].get(b"type") == wanted.encode():
                found.append(row)
                if len(found) == limit:
                    break
        if len(rows) < count:
            break
    return found, cursor


async def dead_letters(request: Request) -> Response:
    """Webhook deliveries that used up their retry budget, newest first."""
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    limit = limit_param(request, default=FEED_LIMIT)
    rows = await gateway.store.dead_letters(keys, limit)
    dead = [orjson.loads(row) for row in rows]
    for entry in dead:
        # Entries are stored redacted; those stored by an older gateway are not.
        entry["webhook"] = redacted(entry["webhook"])
    return json_bytes(orjson.dumps({"dead": dead}))


routes = [
    Route("/v1/triggers", list_triggers),
    Route("/v1/webhooks/dead", dead_letters),
]
