"""POSTs over kept-alive HTTP/1.1 connections, for the destinations' forwarder.

A destination is sent one request per event, as many as the shop ingests, from the process that
ingests them: httpx cost that process more CPU per request than storing the event did (measured,
docs/destinations.md), so these requests are written by hand and their answers read with
httptools (which the ingest protocol uses too). Enough of HTTP for an API answering JSON: no
redirects (a 3xx is an answer like any other), no proxies; TLS for https URLs.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

ANSWER_KEPT = 2048  # bytes of an answer's body kept (a dead letter quotes it)


@dataclass(slots=True)
class Answer:
    status: int
    retry_after: str | None
    body: bytes


class PostFailed(Exception):
    """No answer: the connection failed, closed early or sent what is not HTTP."""


@dataclass(slots=True)
class _Reading:
    status: int = 0
    retry_after: str | None = None
    body: list[bytes] = field(default_factory=list)
    kept: int = 0


class _Connection(asyncio.Protocol):
    """One connection: a request at a time, its answer handed to the waiting `Poster`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reading = _Reading()
        self.waiter: asyncio.Future[Answer] | None = None
        self.open = True
        self.answered = 0  # requests answered on this connection
        self.heard = False  # some of the current answer has arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(PostFailed(f"connection closed: {exc}" if exc else "connection closed"))

    def data_received(self, data: bytes) -> None:
        self.heard = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(PostFailed(f"not an HTTP answer: {exc}"))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.reading.retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.reading.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        reading = self.reading
        if reading.kept < ANSWER_KEPT:
            reading.body.append(body[: ANSWER_KEPT - reading.kept])
            reading.kept += len(reading.body[-1])

    def on_message_complete(self) -> None:
        reading, self.reading = self.reading, _Reading()
        self.answered += 1
        if not self.parser.should_keep_alive():
            self.close()
        if self.waiter is not None and not self.waiter.done():
            answer = Answer(reading.status, reading.retry_after, b"".join(reading.body))
            self.waiter.set_result(answer)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class Poster:
    """POSTs to one base URL over kept-alive connections (one per request under way)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path.rstrip("/")
        self.ssl = ssl.create_default_context() if self.https else None
        default_port = self.port == (443 if self.https else 80)
        authority = parts.hostname if default_port else f"{parts.hostname}:{self.port}"
        lines = [f"host: {authority}", *(f"{name}: {value}" for name, value in headers.items())]
        self.head = "\r\n".join(lines).encode("latin-1")
        self.idle: list[_Connection] = []

    async def post(self, path: str, body: bytes) -> Answer:
        """POST `body` to the base URL's path + `path`; raises PostFailed, OSError or, for the
        caller's timeout, CancelledError (the connection is then dropped)."""
        request = b"POST %s HTTP/1.1\r\n%s\r\ncontent-length: %d\r\n\r\n%s" % (
            (self.path + path).encode("latin-1"),
            self.head,
            len(body),
            body,
        )
        connection = await self._connection()
        try:
            return await self._exchange(connection, request)
        except PostFailed:
            # A server may close a kept-alive connection while it is idle: a request that met
            # such a close, unanswered, is sent once more on a new connection.
            if not connection.answered or connection.heard:
                raise
        self.close()  # the other idle ones are likely closed too
        return await self._exchange(await self._connection(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> Answer:
        connection.waiter = asyncio.get_running_loop().create_future()
        connection.heard = False
        try:
            assert connection.transport is not None
            connection.transport.write(request)
            answer = await connection.waiter
        except BaseException:
            connection.close()  # what it would read next is this request's answer, or nothing
            raise
        connection.waiter = None
        if connection.open:
            self.idle.append(connection)
        return answer

    async def _connection(self) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if connection.open:
                return connection
        loop = asyncio.get_running_loop()
        server_hostname = self.host if self.ssl else None
        _, connection = await loop.create_connection(
            _Connection, self.host, self.port, ssl=self.ssl, server_hostname=server_hostname
        )
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
