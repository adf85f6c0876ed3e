"""uvicorn's httptools protocol, with a short way through it for `POST /v1/event(s)`.

Around each request uvicorn spends Python the app never sees: a scope dict, a RequestResponseCycle
with its asyncio.Event, ASGI receive/send coroutines and their message dicts, a regular-expression
check of every response header, and two socket writes per answer. Measured under wrk on this
project's 2-core machine: the bare benchmark app costs 22 µs of CPU per request under uvicorn and
7.5 µs on a plain httptools protocol (the bench's floor row). For the ingest paths, which take
every page view of a shop, this subclass skips that layer: it collects the body itself, calls
`IngestApp.respond` (the same code the ASGI entry uses) and writes the answer in one piece.
Gateway CPU per single event went 50 -> 40 µs.

Everything else (other paths and methods, `Expect: 100-continue`, upgrades, a request pipelined
behind another one) takes uvicorn's own way, and uvicorn still owns the connection: parsing
(llhttp), keep-alive and its timeout, flow control, graceful shutdown. What this relies on of
uvicorn's protocol: its `cycle` (what is in flight: `response_complete`, `keep_alive`), `url`,
`headers`, `parser`, `expect_100_continue`, `on_response_complete()`. tests/test_protocol.py drives
each case through a real server.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    from .ingest import IngestApp

log = logging.getLogger("gateway.protocol")

INGEST_PATHS = {b"/v1/event": "/v1/event", b"/v1/events": "/v1/events"}
CRASH_ANSWER = (
    STATUS_LINE[500] + b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n"
    b"connection: close\r\n\r\nInternal Server Error"
)


class IngestCycle:
    """One ingest request on the short path. uvicorn's protocol reads `response_complete` of
    whatever is its `cycle`, and sets `keep_alive` False when the server shuts down."""

    __slots__ = (
        "ingest",
        "path",
        "query",
        "keep_alive",
        "response_complete",
        "body",
        "size",
        "dispatched",
    )

    def __init__(self, ingest: IngestApp, path: str, query: bytes, keep_alive: bool) -> None:
        self.ingest = ingest
        self.path = path
        self.query = query
        self.keep_alive = keep_alive
        self.response_complete = False
        self.body: list[bytes] = []
        self.size = 0
        self.dispatched = False

    async def receive(self) -> dict[str, Any]:
        body, self.body = b"".join(self.body), []  # not kept while Redis stores the events
        return {"type": "http.request", "body": body, "more_body": False}


class IngestProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn may wrap the app (e.g. in its trace logger): then every request goes its way.
        ingest: IngestApp | None = getattr(self.app, "ingest", None)
        if self.limit_concurrency is not None or self.root_path:
            ingest = None
        self.ingest = ingest

    def on_headers_complete(self) -> None:
        cycle, ingest, parser = self.cycle, self.ingest, self.parser
        if (
            ingest is not None
            and (cycle is None or cycle.response_complete)
            and not self.expect_100_continue
            and parser.get_method() == b"POST"
            and not parser.should_upgrade()
        ):
            url = httptools.parse_url(self.url)
            path = INGEST_PATHS.get(url.path)
            if path is not None:
                keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
                self.cycle = IngestCycle(  # type: ignore[assignment]
                    ingest, path, url.query or b"", keep_alive
                )
                return
        super().on_headers_complete()

    def ingest_cycle(self) -> IngestCycle | None:
        cycle: object = self.cycle
        return cycle if type(cycle) is IngestCycle else None

    def on_body(self, body: bytes) -> None:
        cycle = self.ingest_cycle()
        if cycle is None:
            super().on_body(body)
        elif not cycle.dispatched:
            cycle.body.append(body)
            cycle.size += len(body)
            if cycle.size > cycle.ingest.limit:  # answered (413) now; the rest is not kept
                self.dispatch(cycle)

    def on_message_complete(self) -> None:
        cycle = self.ingest_cycle()
        if cycle is None:
            super().on_message_complete()
        elif not cycle.dispatched:
            self.dispatch(cycle)

    def dispatch(self, cycle: IngestCycle) -> None:
        cycle.dispatched = True
        task = self.loop.create_task(self.answer(cycle, dict(self.headers)))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def answer(self, cycle: IngestCycle, headers: dict[bytes, bytes]) -> None:
        transport = self.transport
        try:
            status, extra, body = await cycle.ingest.respond(
                "POST", cycle.path, cycle.query, headers, cycle.receive
            )
        except Exception:
            log.exception("error answering %s", cycle.path)
            transport.write(CRASH_ANSWER)
            transport.close()
            return
        if transport.is_closing():  # the client went away: its events are stored all the same
            return
        # No header check as uvicorn's send does: the names are ours, and the one value taken from
        # the request (the CORS origin) passed llhttp, which refuses control characters but tab.
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *extra):
            head += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"\r\n", body)
        transport.write(b"".join(head))
        cycle.response_complete = True
        if not cycle.keep_alive:
            transport.close()
        self.on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        # uvicorn would signal its own cycle's message_event, which an IngestCycle has not.
        if self.ingest_cycle() is not None:
            self.cycle = None  # type: ignore[assignment]
        super().connection_lost(exc)
