"""Reading triggers over HTTP (`GET /v1/triggers`, `GET /v1/webhooks/dead`) and running the
background tasks that produce and deliver them (the detector, the webhook deliverer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.contacts import MAX_SCAN, PAGE, limit_param
from gateway.background.detector import Detector
from gateway.background.webhooks import Deliverer
from gateway.errors import invalid
from gateway.model.events import EVENT_TYPE
from gateway.redaction import redacted
from gateway.redis.store import StoreUnavailable

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("gateway")

# A stream id as Redis reads one: milliseconds and sequence, each a 64-bit unsigned integer.
STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
MAX_ID_PART = 2**64 - 1
FEED_LIMIT = 100  # triggers or dead letters per request without ?limit=


@dataclass
class Background:
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]


async def start_background(gateway: Gateway) -> Background:
    deliverer = Deliverer(gateway)
    with contextlib.suppress(StoreUnavailable):
        await deliverer.prepare()  # before any trigger can exist; else retried by run()
    stop = asyncio.Event()
    return Background(
        stop,
        [
            asyncio.create_task(Detector(gateway).run(stop), name="detector"),
            asyncio.create_task(deliverer.run(stop), name="webhooks"),
        ],
    )


async def stop_background(background: Background) -> None:
    """Let the loops finish their current step (no Redis call is cut in half), then end."""
    background.stop.set()
    for result in await asyncio.gather(*background.tasks, return_exceptions=True):
        if isinstance(result, BaseException):
            log.error("background task failed", extra={"error": repr(result)})


def json_bytes(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def list_triggers(gateway: Gateway, request: Request) -> Response:
    """Triggers after the cursor, oldest first; `next` is the cursor to pass on (a stream id)."""
    principal = await gateway.principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    limit = limit_param(request, default=FEED_LIMIT)
    after = request.query_params.get("after") or "0-0"
    cursor_id = STREAM_ID.fullmatch(after)
    last = tuple(int(part or 0) for part in cursor_id.groups()) if cursor_id else (-1,)
    if not 0 <= max(last) <= MAX_ID_PART:
        raise invalid("after", "after must be a cursor from a previous 'next' (like 1700000-0).")
    wanted = request.query_params.get("type") or None
    if wanted is not None and not EVENT_TYPE.fullmatch(wanted):
        raise invalid("type", "type must be a trigger type such as abandonedCart.")
    found: list[orjson.Fragment] = []
    cursor = after
    scanned = 0
    # Nothing follows the largest id (for which XRANGE refuses an exclusive start).
    while len(found) < limit and scanned < MAX_SCAN and last != (MAX_ID_PART, MAX_ID_PART):
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


async def dead_letters(gateway: Gateway, request: Request) -> Response:
    """Webhook deliveries that used up their retry budget, newest first."""
    principal = await gateway.principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    limit = limit_param(request, default=FEED_LIMIT)
    rows = await gateway.store.dead_letters(keys, limit)
    dead = [orjson.loads(row) for row in rows]
    for entry in dead:
        # Entries are stored redacted; those stored by an older gateway are not.
        entry["webhook"] = redacted(entry["webhook"])
    return json_bytes(orjson.dumps({"dead": dead}))
