"""A fake eSputnik API: a real local HTTP server that checks HTTP Basic (any user, the API key
as the password, as eSputnik's API takes it), records every request and answers as scripted."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

API_KEY = "esputnik-test-key-1"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def password(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        return base64.b64decode(token).decode().partition(":")[2]


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"status":"ok"}'
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeEsputnik:
    api_key: str = API_KEY
    answers: list[Answer] = field(default_factory=list)  # the next answers, in order
    default: Answer = field(default_factory=Answer)
    requests: list[Request] = field(default_factory=list)
    server: asyncio.Server | None = None
    url: str = ""  # the API base, as a destination's `url`
    port: int = 0  # 0: any free port
    drop_after_answer: bool = False  # close each connection once answered, without saying so

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        return self.url

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def at(self, path: str) -> list[Request]:
        """The requests to `/api{path}` with the right key, in arrival order."""
        return [r for r in self.requests if r.path == "/api" + path and r.password == self.api_key]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A request is recorded only once it arrived whole; keep-alive connections serve many."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(path, headers, body, time.time())
                self.requests.append(request)
                if request.password != self.api_key:
                    answer = Answer(401, b'{"error":"unauthorized"}')
                else:
                    answer = self.answers.pop(0) if self.answers else self.default
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(answer.body)}\r\n{extra}\r\n".encode()
                    + answer.body
                )
                await writer.drain()
                if self.drop_after_answer:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()


def destination(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "esputnik", "url": url, "api_key": API_KEY, **extra}
