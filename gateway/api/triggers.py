"""The trigger feed, `GET /v1/triggers`, and the webhooks' dead letters, `GET /v1/webhooks/dead`
(the triggers themselves are made and delivered by gateway/background/)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import invalid
from gateway.http import (
    FEED_LIMIT,
    LAST_STREAM_ID,
    MAX_SCAN,
    PAGE,
    json_bytes,
    limit_param,
    stream_cursor,
)
from gateway.model.events import EVENT_TYPE
from gateway.redaction import redacted
from gateway.state import server_principal


async def list_triggers(request: Request) -> Response:
    """Triggers after the cursor, oldest first; `next` is the cursor to pass on (a stream id)."""
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    limit = limit_param(request, default=FEED_LIMIT)
    after, last = stream_cursor(request, "after")
    wanted = request.query_params.get("type") or None
    if wanted is not None and not EVENT_TYPE.fullmatch(wanted):
        raise invalid("type", "type must be a trigger type such as abandonedCart.")
    found: list[orjson.Fragment] = []
    cursor = after
    scanned = 0
    # Nothing follows the largest id (for which XRANGE refuses an exclusive start).
    while len(found) < limit and scanned < MAX_SCAN and last != LAST_STREAM_ID:
        count = limit if wanted is None else PAGE
        rows = await gateway.store.triggers_after(keys, "(" + cursor, count)
        scanned += len(rows)
        for stream_id, fields in rows:
            cursor = stream_id.decode()
            if wanted is None or fields.get(b"type") == wanted.encode():
                found.append(orjson.Fragment(fields[b"trigger"]))
                if len(found) == limit:
                    break
        if len(rows) < count:
            break
    return json_bytes(orjson.dumps({"triggers": found, "next": cursor}))


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
