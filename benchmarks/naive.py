"""Baseline (b): the obvious handler: Starlette, one `XADD` per request through redis.asyncio.

It stores the event (so a 200 means stored, as in the gateway) but does no validation, identity or
per-contact state: the gateway has to beat it while doing all of that.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STREAM = "naive:events"
client = aioredis.Redis.from_url(os.environ["REDIS_URL"], max_connections=64)


async def event(request: Request) -> Response:
    document = orjson.loads(await request.body())
    entry_id = await client.xadd(STREAM, {"e": orjson.dumps(document)})
    return Response(
        orjson.dumps({"status": "accepted", "id": entry_id.decode()}),
        media_type="application/json",
    )


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await client.aclose()


app = Starlette(routes=[Route("/v1/event", event, methods=["POST"])], lifespan=lifespan)
