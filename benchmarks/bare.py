"""Baseline (a): the least an ASGI app can do per event: read the body, parse it, answer 200.

Nothing here stores anything; it measures what uvicorn + httptools + uvloop + orjson cost on this
machine, so the gateway's figures can be read as a fraction of it.
"""

from __future__ import annotations

from typing import Any

import orjson

HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"21")]
ANSWER = b'{"status":"accepted"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
