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
uvicorn's protocol: its `cycle` (what is in flight: `response_complete`, `keep_alive`, and for
its own cycle `response_started`), `url`, `headers`, `parser`, `expect_100_continue`,
`on_message_begin()`, `on_response_complete()`, and for the mend below `ws_protocol_class`,
`logger`, `_unset_keepalive_if_required()`.
tests/test_protocol.py drives each case through a real server, on the newest uvicorn and on the
oldest that pyproject.toml admits (`make test-oldest`).

It also mends uvicorn's handling of a request that offers an upgrade the server does not take
(`Upgrade: h2c`, which Java's HttpClient, Spring's RestClient on it, and Ktor send by default):
llhttp stops at the end of such a request's head and skips its body, so the app saw an empty body
(a 400 for valid JSON). RFC 9110 §7.8 lets a server ignore the offer; here the body is read by a
fresh parser into the same request, and the connection goes on in HTTP/1.1.

This module is over 300 lines because it is one subclass of uvicorn's protocol: each override
leans on what the others keep (the cycle, the deadline, the refused upgrade), so they stay in one
place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.errors import INTERNAL_ERROR, ApiError
from gateway.ingest.app import IngestApp
from gateway.settings import REQUEST_TIMEOUT_SECONDS

log = logging.getLogger("gateway.protocol")

# What a request body's length is read from; a refused upgrade's body is read again by them.
FRAMING = (b"content-length", b"transfer-encoding")
INVALID_REQUEST = "Invalid HTTP request received."  # uvicorn's words, for the same case
MALFORMED = ApiError(400, "invalid_request", INVALID_REQUEST)
# A request's line and headers together: httptools and uvicorn join their pieces with `+=`, so a
# head of hundreds of MB took minutes of CPU and GBs of memory, and stalled every other request.
MAX_HEAD_BYTES = 64 * 1024
# A body is buffered past this size only for a known key (a site key is public, so this only
# keeps keyless floods small; request_timeout_seconds bounds the rest).
UNCHECKED_BODY_BYTES = 64 * 1024
HEAD_TOO_LARGE = ApiError(
    431,
    "head_too_large",
    f"The request line and headers are larger than {MAX_HEAD_BYTES} bytes.",
    "headers",
)
REQUEST_TIMEOUT = ApiError(
    408, "request_timeout", "The request did not arrive whole within request_timeout_seconds."
)


def answer_bytes(error: ApiError) -> bytes:
    """A whole JSON error answer that closes the connection."""
    body = error.json()
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
    return STATUS_LINE[error.status] + head % len(body) + body


class HeadTooLarge(Exception):
    """Raised by a parser callback; httptools passes it on as the context of its own error."""


def head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)


def first_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


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
        "headers",
    )

    def __init__(
        self,
        ingest: IngestApp,
        path: str,
        query: bytes,
        keep_alive: bool,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.ingest = ingest
        self.path = path
        self.query = query
        self.keep_alive = keep_alive
        self.response_complete = False
        self.body: list[bytes] = []
        self.size = 0
        self.dispatched = False
        self.headers = headers

    def has_known_key(self) -> bool:
        authorization = first_header(self.headers, b"authorization")
        try:
            self.ingest.gateway.keys.authenticate(
                None if authorization is None else authorization.decode("latin-1"), self.query
            )
        except ApiError:
            return False
        return True

    async def receive(self) -> dict[str, Any]:
        body, self.body = b"".join(self.body), []  # not kept while Redis stores the events
        return {"type": "http.request", "body": body, "more_body": False}


class IngestProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn may wrap the app (e.g. in its trace logger): then every request goes its way.
        ingest = getattr(self.app, "ingest", None)
        if self.limit_concurrency is not None or self.root_path:
            ingest = None
        self.ingest = ingest if isinstance(ingest, IngestApp) else None
        self.replaying = False  # a refused upgrade's body is being read (refuse_upgrade)
        self.receiving = False  # a request has begun and is not all read yet
        self.head_pending = False  # ... and its head is not all read yet
        self.head_size = 0
        self.read_size = 0  # of the data being parsed
        # A request must arrive whole (head and body) within `request_seconds`, and a new
        # connection must send one: a client dripping a byte now and then held its connection
        # and buffered body forever.
        self.request_seconds = REQUEST_TIMEOUT_SECONDS if ingest is None else ingest.request_seconds
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.call_later(self.request_seconds, self.request_timed_out)

    def request_timed_out(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        cycle: Any = self.cycle
        answered = cycle is not None and (
            cycle.dispatched if type(cycle) is IngestCycle else cycle.response_started
        )
        if self.receiving and not answered:
            self.refuse(REQUEST_TIMEOUT)
        else:
            self.transport.close()  # also a connection that never sent a request

    def refuse(self, error: ApiError) -> None:
        """Answer `error` in JSON, as every other error, and close the connection."""
        self.logger.warning(error.message)
        self.transport.write(answer_bytes(error))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.ws_protocol_class is not None:  # uvicorn may upgrade to WebSocket: its own way
            super().data_received(data)
            return
        self._unset_keepalive_if_required()
        self.read_size = len(data)
        while True:
            try:
                self.parser.feed_data(data)
                break
            except httptools.HttpParserError as error:
                self.refuse(
                    HEAD_TOO_LARGE if type(error.__context__) is HeadTooLarge else MALFORMED
                )
                return
            except httptools.HttpParserUpgrade as upgrade:
                data = self.refuse_upgrade(data[upgrade.args[0] :])
        # Most requests arrive whole in one read: they neither count nor arm anything here.
        if self.receiving:
            if self.head_pending:
                self.head_size += len(data)
                if self.head_size > MAX_HEAD_BYTES:
                    self.refuse(HEAD_TOO_LARGE)
                    return
            if self.deadline is None:
                self.deadline = self.loop.call_later(self.request_seconds, self.request_timed_out)
        elif self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def refuse_upgrade(self, rest: bytes) -> bytes:
        """Go on in HTTP/1.1 after a request offering an upgrade: what to feed the new parser.

        Its head is parsed and its request under way, without a body (on_message_complete held
        it back). A fresh parser reads the body behind a head that gives only its framing, into
        that request (`replaying` keeps the head from starting another), then what follows."""
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # as uvicorn sets its own (httptools >= 0.6.3)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        framing = [name + b": " + value for name, value in self.headers if name in FRAMING]
        self.replaying = True
        return b"\r\n".join([b"POST / HTTP/1.1", *(framing or [b"content-length: 0"]), b"", rest])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self.replaying:
            self.receiving = True
            self.head_pending = True
            self.head_size = 0

    def on_headers_complete(self) -> None:
        self.head_pending = False
        if self.replaying:
            return
        # A head that arrived whole in one read was not counted while arriving (data_received);
        # only a read that big can hold one over the limit, so only then is it measured.
        if self.read_size > MAX_HEAD_BYTES and head_size(self.url, self.headers) > MAX_HEAD_BYTES:
            raise HeadTooLarge
        cycle, ingest, parser = self.cycle, self.ingest, self.parser
        if (
            ingest is not None
            and (cycle is None or cycle.response_complete)
            and not self.expect_100_continue
            and parser.get_method() == b"POST"
            and not parser.should_upgrade()
        ):
            url = httptools.parse_url(self.url)
            path = ingest.spellings.get(url.path)  # every spelling, aliases too (ingest/app.py)
            if path is not None:
                keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
                self.cycle = IngestCycle(  # type: ignore[assignment]
                    ingest, path, url.query or b"", keep_alive, self.headers
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
            size = cycle.size
            cycle.size = size + len(body)
            if cycle.size > cycle.ingest.limit:  # answered (413) now; the rest is not kept
                self.dispatch(cycle)
            elif size <= UNCHECKED_BODY_BYTES < cycle.size and not cycle.has_known_key():
                self.dispatch(cycle)  # answered (401) now; the rest is not kept

    def on_message_complete(self) -> None:
        cycle = self.ingest_cycle()
        if cycle is None:
            if self.replaying:  # the refused upgrade's body is all read
                self.replaying = False
            elif self.parser.should_upgrade() and self.ws_protocol_class is None:
                return  # the body is still to come: refuse_upgrade
            self.receiving = False
            super().on_message_complete()
        else:
            self.receiving = False
            if not cycle.dispatched:
                self.dispatch(cycle)

    def dispatch(self, cycle: IngestCycle) -> None:
        cycle.dispatched = True
        # The first of a repeated header wins, as Starlette reads them on every other route.
        task = self.loop.create_task(self.answer(cycle, dict(reversed(cycle.headers))))
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
            transport.write(answer_bytes(INTERNAL_ERROR))
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
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        # uvicorn would signal its own cycle's message_event, which an IngestCycle has not.
        if self.ingest_cycle() is not None:
            self.cycle = None  # type: ignore[assignment]
        super().connection_lost(exc)
