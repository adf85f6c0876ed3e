"""Baseline (a'): the bare app's work without uvicorn: a plain httptools protocol on uvloop.

It reads the body, `orjson.loads` it and answers 200 with keep-alive, nothing more (no pipelining
order, limits or timeouts: it serves wrk, not the internet). The gateway answers its ingest paths
below uvicorn's ASGI layer (gateway/ingest/protocol.py), so this row, not (a), is the ceiling
of what a Python server can do per request on the machine. Usage: `python bare_protocol.py PORT`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from email.utils import formatdate
from typing import Any

import httptools
import orjson
import uvloop

ANSWER = b'{"status":"accepted"}'
_date = (0, b"")


def date_header() -> bytes:
    """The Date value, formatted once per second (as uvicorn does)."""
    global _date
    second = int(time.time())
    if second != _date[0]:
        _date = (second, formatdate(second, usegmt=True).encode())
    return _date[1]


class BareProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:  # uvloop's transport class
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        orjson.loads(b"".join(self.body))
        self.body = []
        head = (
            b"HTTP/1.1 200 OK\r\ndate: %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % (date_header(), len(ANSWER))
        )
        self.transport.write(head + ANSWER)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(BareProtocol, "127.0.0.1", port)
    async with server:
        await stop


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
