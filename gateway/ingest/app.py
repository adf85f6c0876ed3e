"""`POST /v1/event` and `POST /v1/events`: the hot path, as plain ASGI.

Every page view of a shop passes here, so this skips Starlette's request/response layers (they
cost measurable time per request) and does the minimum: read the body within its limit, one orjson
parse, validate, and hand the events to the micro-batcher that pipelines them into Redis. The
answer is sent only after Redis has stored the events. A refusal of a known key's request is also
handed to the refused-request log (gateway/redis/refusals.py), which writes it behind the answer
(docs/dashboard.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.auth import PREFLIGHT_HEADERS, Principal
from gateway.clock import iso, now_ms
from gateway.errors import INTERNAL_ERROR, ApiError, invalid, not_stored, unavailable
from gateway.http import (
    API_PREFIX,
    Receive,
    Scope,
    Send,
    api_path,
    check_media_type,
    parse_json,
    read_body,
)
from gateway.model import events
from gateway.redis.results import EventResult
from gateway.redis.store import StoreUnavailable
from gateway.state import GatewayState

JSON_HEADERS = [(b"content-type", b"application/json")]
SAMPLE_BYTES = 2048  # of a refused request's body, kept in the refused-request log
PATHS = frozenset({"/v1/event", "/v1/events"})
# A batch's event refused on its own: its error (with its index), and its first bytes as sent.
Refusal = tuple[dict[str, Any], bytes]
# The status and body of an answer, and the refusals of a batch's events it holds.
Answer = tuple[int, bytes, Sequence[Refusal]]
NO_REFUSALS: tuple[Refusal, ...] = ()
# Allow of a 405, as Starlette writes it for its routes (GET routes answer HEAD too). A
# first-party alias (collect_path, collect_batch_path) takes POST only: GET /v1/events reads.
ALLOWED_METHODS = {"/v1/event": "POST, OPTIONS", "/v1/events": "GET, HEAD, POST, OPTIONS"}
ALIAS_METHODS = "POST, OPTIONS"


def spellings(paths: frozenset[str]) -> dict[bytes, str]:
    """Every spelling of the ingest paths that api_path reads as one of them (`/api/v1/event/`
    for `/v1/event`), for the protocol to find its path with one dict lookup."""
    found: dict[bytes, str] = {}
    for path in paths:
        for spelling in (path, path + "/", API_PREFIX + path, API_PREFIX + path + "/"):
            if api_path(spelling, spelling.encode()) == path:
                found[spelling.encode()] = path
    return found


class IngestApp:
    def __init__(self, gateway: GatewayState) -> None:
        self.gateway = gateway
        settings = gateway.settings
        self.limit = settings.max_body_bytes
        self.request_seconds = settings.request_timeout_seconds
        self.max_batch = settings.max_batch
        self.metrics = gateway.metrics
        self.batch_paths = frozenset({"/v1/events", settings.collect_batch_path})
        self.paths = PATHS | {settings.collect_path} | self.batch_paths
        self.allowed_methods = dict.fromkeys(self.paths, ALIAS_METHODS) | ALLOWED_METHODS
        self.spellings = spellings(self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, headers, answer = await self.respond(
            scope["method"], scope["path"], scope["query_string"], dict(scope["headers"]), receive
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def respond(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: dict[bytes, bytes],
        receive: Receive,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers and body of the answer to one request (the body read by `receive`).

        Shared by the ASGI entry above and `protocol.IngestProtocol`, which calls it directly."""
        started = time.perf_counter()
        extra: list[tuple[bytes, bytes]] = []
        tenant = "-"
        principal: Principal | None = None
        sample = b""
        try:
            if method == "OPTIONS":
                return 204, self.preflight(query, headers), b""
            if method != "POST":
                allowed = self.allowed_methods[path]
                raise ApiError(
                    405,
                    "method_not_allowed",
                    f"{path} accepts {allowed}.",
                    "method",
                    headers={"allow": allowed},
                )
            principal = self.gateway.keys.authenticate(_text(headers.get(b"authorization")), query)
            tenant = principal.tenant.id  # refusals from here on are counted for the tenant
            extra = await self.gateway.admit(principal, _text(headers.get(b"origin")), False)
            check_media_type(headers)
            body = await read_body(receive, headers, self.limit)
            sample = body[:SAMPLE_BYTES]  # the same object, no copy, for a body that short
            batch = path in self.batch_paths
            handle = self.many if batch else self.one
            work = handle(principal, parse_json(body, batch), now_ms())
            del body  # the parsed body is passed on; neither is kept here while Redis stores it
            status, answer, refusals = await work
            for error, event in refusals:  # a batch's events refused one by one
                self.refused(principal, path, headers, event, error, 200)
        except ApiError as error:
            if error.status == 503:
                self.metrics.redis_unavailable.inc()
            else:
                self.metrics.events_rejected.inc(tenant, error.code)
                if principal is not None:
                    self.refused(principal, path, headers, sample, error.body(), error.status)
            status, answer = error.status, error.json()
            extra = extra + [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()
            ]
        extra.append((b"content-length", str(len(answer)).encode()))
        self.metrics.request_latency.observe(time.perf_counter() - started, path)
        return status, JSON_HEADERS + extra, answer

    def refused(
        self,
        principal: Principal,
        path: str,
        headers: dict[bytes, bytes],
        sample: bytes,
        error: dict[str, Any],
        status: int,
    ) -> None:
        """Log a refusal of a known key's request for GET /v1/debug/events (never the key)."""
        at = now_ms()
        entry = {
            "at": iso(at),
            "path": path,
            "keyKind": principal.kind,
            "origin": _text(headers.get(b"origin")),
            "status": status,
            "field": None,  # an error without one has none: every entry has the same fields
            **error,
            "body": sample.decode("utf-8", "replace"),
        }
        prefix = self.gateway.tenant_keys(principal.tenant).prefix
        self.gateway.refusals.add(prefix, at, str(error["error"]), orjson.dumps(entry))

    def preflight(self, query: bytes, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        origin = _text(headers.get(b"origin"))
        if origin is None or not self.gateway.keys.preflight_allows(origin, query):
            raise ApiError(403, "origin_not_allowed", "This origin is not allowed.", "origin")
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"origin"),
            *PREFLIGHT_HEADERS,
        ]

    async def one(self, principal: Principal, document: Any, now: int) -> Answer:
        prepared = events.prepare(
            document, principal.is_site, iso(now), bool(principal.tenant.destinations)
        )
        (result,) = await self.store(principal, [prepared], now)
        if result.failed is not None:  # counted as a refusal by `respond`, as any ApiError
            raise not_stored(result.failed, tenant=principal.tenant.id, event_id=prepared.event_id)
        if result.reason is not None:  # suppressed, or an order event whose order changed nothing
            answer = {"status": "ignored", "eventId": prepared.event_id, "reason": result.reason}
            return 200, orjson.dumps(answer), NO_REFUSALS
        status = "duplicate" if result.duplicate else "accepted"
        return 200, orjson.dumps({"status": status, "eventId": prepared.event_id}), NO_REFUSALS

    async def many(self, principal: Principal, document: Any, now: int) -> Answer:
        if isinstance(document, dict) and "events" in document:
            document = document["events"]
        if not isinstance(document, list):
            raise invalid("body", 'The body must be an array of events or {"events": [...]}.')
        if len(document) > self.max_batch:
            raise ApiError(
                413, "batch_too_large", f"At most {self.max_batch} events per request.", "events"
            )
        refusals: list[Refusal] = []
        good, indices, failed = self.prepare_all(principal, document, iso(now), refusals)
        # The parsed events are freed now, not after Redis has answered: with 64 batches in
        # flight, keeping them cost ~10 % more CPU per batch (cache and the collector's scans).
        del document
        results = await self.store(principal, good, now) if good else []
        duplicates = sum(1 for r in results if r.duplicate)
        ignored: list[dict[str, Any]] = []
        invalid_count = len(failed)
        for index, p, r in zip(indices, good, results, strict=True):
            if r.reason is not None:
                ignored.append({"index": index, "eventId": p.event_id, "reason": r.reason})
            elif r.failed is not None:  # Redis failed on this event alone (a damaged key)
                tenant = principal.tenant.id
                self.metrics.events_rejected.inc(tenant, INTERNAL_ERROR.code)
                error = not_stored(r.failed, tenant=tenant, event_id=p.event_id, index=index)
                failed.append({"index": index, **error.body()})
                refusals.append((failed[-1], p.raw[:SAMPLE_BYTES]))
        if len(failed) > invalid_count:  # one list in index order, the invalid ones among them
            failed.sort(key=lambda entry: int(entry["index"]))
        answer: dict[str, Any] = {
            "accepted": len(good) - duplicates - len(ignored) - (len(failed) - invalid_count),
            "duplicates": duplicates,
            "failed": failed,
        }
        if ignored:  # suppressed or order events only; other clients never see the key
            answer["ignored"] = ignored
        return 200, orjson.dumps(answer), refusals

    def prepare_all(
        self, principal: Principal, document: list[Any], received: str, refusals: list[Refusal]
    ) -> tuple[list[events.Prepared], list[int], list[dict[str, Any]]]:
        """The batch's valid events prepared, their indices, and an error per invalid event
        (also added to `refusals`, with the event as sent)."""
        good: list[events.Prepared] = []
        indices: list[int] = []
        failed: list[dict[str, Any]] = []
        tenant, forward = principal.tenant.id, bool(principal.tenant.destinations)
        for index, item in enumerate(document):
            try:
                good.append(events.prepare(item, principal.is_site, received, forward))
                indices.append(index)
            except ApiError as error:
                self.metrics.events_rejected.inc(tenant, error.code)
                failed.append({"index": index, **error.body()})
                refusals.append((failed[-1], _sample(item)))
        return good, indices, failed

    async def store(
        self,
        principal: Principal,
        prepared: list[events.Prepared],
        now: int,
    ) -> list[EventResult]:
        tenant = principal.tenant
        try:
            results = await self.gateway.batcher.submit(
                self.gateway.limits(tenant), now, [(p.envelope, p.raw, p.forward) for p in prepared]
            )
        except StoreUnavailable:
            raise unavailable() from None
        accepted, duplicate = self.metrics.events_accepted, self.metrics.events_duplicate
        for p, result in zip(prepared, results, strict=True):
            if result.duplicate:
                duplicate.inc(tenant.id)
            elif result.suppressed:  # nothing stored (docs/privacy.md)
                self.metrics.suppressed_ignored.inc(tenant.id)
            elif result.failed is None:  # a failed event is counted by its caller
                accepted.inc(
                    tenant.id, p.event_type if p.event_type in events.KNOWN_TYPES else "custom"
                )
                if p.repaired:
                    self.metrics.events_repaired.inc(tenant.id)
                if result.ignored:
                    self.metrics.orders_failed.inc(tenant.id, "ignored")
                elif result.order_status is not None:
                    self.metrics.orders_stored.inc(tenant.id, result.order_status, "event")
        return results


def _sample(item: Any) -> bytes:
    """The first bytes of a batch's event as it was sent (parsed and written again)."""
    try:
        return orjson.dumps(item)[:SAMPLE_BYTES]
    except TypeError:  # a value orjson cannot write back (none it parses; kept safe)
        return b""


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
