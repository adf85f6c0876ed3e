"""What every HTTP path shares: ASGI types, JSON answers, reading a JSON body within its limit,
and the paging parameters of the read endpoints (`limit`, `after`)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ApiError, invalid
from gateway.model.decoding import mark_repeated_params

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
ACCEPTED_TYPES = frozenset({b"application/json", b"text/plain", b""})
# `curl -d` without -H sends a form content type: say how to fix it rather than only refuse.
FORM_HINT = {
    b"application/x-www-form-urlencoded": (
        " (curl -d sends a form content type: add -H 'Content-Type: application/json')."
    )
}

# eSputnik's and Yespo's documented base is `…/api/v1/`, and clients in the wild append a slash:
# both spellings of every API path are answered in place (a redirect loses a POST's body in some
# clients and costs a round trip). Paths that merely look alike (`/api/v2/…`, `//v1/…`) are not.
API_PREFIX = "/api"
API_ROOT = "/v1/"


def api_path(path: str, raw_path: bytes) -> str:
    """The canonical spelling of an API path: `/api/v1/event/` -> `/v1/event`; other paths as
    they are. Only a slash sent as one is cut: `%2F` ending an identifier is part of it."""
    if path.startswith("/api/v1/"):
        path = path[len(API_PREFIX) :]
    if (
        path.endswith("/")
        and path.startswith(API_ROOT)
        and len(path) > len(API_ROOT)
        and raw_path.endswith(b"/")
    ):
        path = path[:-1]
    return path


MAX_LIMIT = 1000
DEFAULT_LIMIT = 50  # events per GET /v1/events without ?limit=
FEED_LIMIT = 100  # triggers or dead letters per request without ?limit=
# Filtering by type reads entries until `limit` match: a rare type would read a whole stream
# (a million events: most of a second of Redis, per request). One request reads at most this
# many; a rare type answers short (GET /v1/triggers also says where it stopped, with `next`).
MAX_SCAN = 10_000
PAGE = 500  # stream entries read per round trip while filtering by type
# A stream id as Redis reads one: milliseconds and sequence, each a 64-bit unsigned integer.
STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
MAX_ID_PART = 2**64 - 1
LAST_STREAM_ID = (MAX_ID_PART, MAX_ID_PART)
StreamOrder = tuple[int, int]


def stream_order(stream_id: str | bytes) -> StreamOrder:
    """A stream id, `<ms>-<sequence>` as text or bytes, as the numbers Redis orders it by."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, sequence = text.partition("-")
    return int(ms), int(sequence or 0)


class AnyText(Convertor[str]):
    """A path parameter of any characters. Starlette's `path` is `.*`, whose `.` stops at a line
    break, and the route's `$` lets a trailing one go unmatched: `/v1/contacts/trail%0A` read the
    contact `trail`, and an identifier with a line break inside it was not found at all."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyText())


def json_response(body: Any, status: int = 200) -> Response:
    return json_bytes(orjson.dumps(body), status)


def json_bytes(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=JSON)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No {what} with that identifier.", None)


def limit_param(request: Request, default: int = DEFAULT_LIMIT) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    # isdigit() alone takes "²" and other scripts' digits, which int() then refuses (a 500)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= MAX_LIMIT):
        raise invalid("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def stream_cursor(request: Request, name: str = "after") -> tuple[str, tuple[int, ...]]:
    """A stream id passed back from a previous answer's `next`, and its parts as numbers."""
    cursor = request.query_params.get(name) or "0-0"
    found = STREAM_ID.fullmatch(cursor)
    parts = tuple(int(part or 0) for part in found.groups()) if found else (-1,)
    if not 0 <= max(parts) <= MAX_ID_PART:
        raise invalid(name, f"{name} must be a cursor from a previous 'next' (like 1700000-0).")
    return cursor, parts


def before_cursor(request: Request) -> str | None:
    """`?before=`, a previous answer's `next`, as `<ms>-<sequence>`; None when absent or empty
    (from the newest)."""
    if not request.query_params.get("before"):
        return None
    _, (ms, sequence) = stream_cursor(request, "before")
    return f"{ms}-{sequence}"


def too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"The body is larger than {limit} bytes.", "body")


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "client_disconnected", "The client went away.", "body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    encoding = headers.get(b"content-encoding", b"identity").strip().lower()
    if encoding == b"gzip":
        return gunzip(body, limit)
    if encoding != b"identity":
        raise ApiError(
            415,
            "unsupported_encoding",
            "Content-Encoding must be gzip or absent.",
            "content-encoding",
        )
    return body


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes: a gzip bomb is refused by its decompressed size.

    Every member of the body (RFC 1952 lets one follow another, as `gzip -c a b` writes them), as
    Python's gzip module reads it: NUL padding after a member is skipped, anything else is not
    gzip."""
    out: list[bytes] = []
    room = limit
    rest = body
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            member = inflater.decompress(rest, room + 1)
        except zlib.error:
            raise invalid("body", "The body is not valid gzip.", code="invalid_gzip") from None
        room -= len(member)
        if room < 0 or inflater.unconsumed_tail:
            raise too_large(limit)
        if not inflater.eof:
            raise invalid("body", "The gzip body is truncated.", code="invalid_gzip")
        out.append(member)
        rest = inflater.unused_data.lstrip(b"\0")
    return b"".join(out)


def media_type(headers: dict[bytes, bytes]) -> bytes:
    return headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()


async def read_json(
    receive: Receive, headers: dict[bytes, bytes], limit: int, batch: bool | None = None
) -> Any:
    """The parsed body of a JSON request: content type, size (after gunzip) and syntax checked.

    For an event body, `batch` tells its form, and object-form params that repeat a name are
    marked (decoding.RepeatedParams)."""
    check_media_type(headers)
    return parse_json(await read_body(receive, headers, limit), batch)


async def read_batch(request: Request, name: str, max_body: int, max_batch: int) -> list[Any]:
    """The list a server-side batch endpoint takes, `{"<name>": [...]}` (orders, products): a
    body of another shape is a 400 naming `name`, a list over `max_batch` a 413."""
    headers = dict(request.scope["headers"])
    document = await read_json(request.receive, headers, max_body)
    batch = document.get(name) if isinstance(document, dict) else None
    if not isinstance(batch, list):
        raise invalid(name, f'The body must be {{"{name}": [...]}}.')
    if len(batch) > max_batch:
        raise ApiError(413, "batch_too_large", f"At most {max_batch} {name} per request.", name)
    return batch


def check_media_type(headers: dict[bytes, bytes]) -> None:
    kind = media_type(headers)
    if kind not in ACCEPTED_TYPES:
        message = "Content-Type must be application/json or text/plain" + FORM_HINT.get(kind, ".")
        raise ApiError(415, "unsupported_media_type", message, "content-type")


def parse_json(body: bytes, batch: bool | None = None) -> Any:
    """`read_json`'s second half, for a caller that keeps the body it read (the ingest path keeps
    its first bytes for the refused-request log)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid("body", "The body is not valid JSON.", code="invalid_json") from None
    # One event in the usual list form (the hot path) is ruled out here, without a call.
    if batch or (
        batch is not None and type(document) is dict and type(document.get("params")) is dict
    ):
        mark_repeated_params(document, body, bool(batch))
    return document
