"""`GET /v1/contacts/{identifier}`: a contact's profile, identifiers, cart, recent views and
orders; and the reads of contacts and their events that `GET /v1/events` shares."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.paging import newest_first
from gateway.clock import iso, stored_iso
from gateway.http import MAX_SCAN, json_response, not_found, stream_order
from gateway.model.identity import lookup_candidates
from gateway.redis.constants import EVENT_TYPES, PUBLIC_NAMES
from gateway.redis.keys import TenantKeys, list_entry_event
from gateway.redis.reads import ContactRecord, Hash
from gateway.redis.store import Store
from gateway.state import GatewayState, server_principal

MAX_STITCHES = 8


async def find_contact(store: Store, keys: TenantKeys, identifier: str) -> str | None:
    """The contact id an identifier (email, phone, any id, or the contact id itself) names."""
    if not identifier or len(identifier) > 512:
        return None
    for contact_id in await store.named_contacts(keys, lookup_candidates(identifier)):
        if contact_id is not None:
            return contact_id
    return (await current_contacts(store, keys, [identifier]))[identifier]


async def current_contacts(
    store: Store, keys: TenantKeys, contact_ids: list[str]
) -> dict[str, str | None]:
    """Each contact id as it is now: itself, the contact it was stitched into (following up to
    MAX_STITCHES stitches in a row), or None when it is gone. One round trip per step."""
    wanted = {contact_id: contact_id for contact_id in contact_ids}  # as given -> candidate
    current: dict[str, str | None] = {}
    for _ in range(MAX_STITCHES):
        if not wanted:
            break
        states = await store.contact_states(keys, list(wanted.values()))
        following: dict[str, str] = {}
        for (given, candidate), (exists, into) in zip(wanted.items(), states, strict=True):
            if exists:
                current[given] = candidate
            elif into is None:
                current[given] = None
            else:
                following[given] = into
        wanted = following
    current.update(dict.fromkeys(wanted))  # stitched more often than followed: not found
    return current


async def read_contact(store: Store, keys: TenantKeys, contact_id: str) -> dict[str, Any]:
    return contact_document(contact_id, await store.contact_record(keys, contact_id))


def contact_document(contact_id: str, record: ContactRecord) -> dict[str, Any]:
    profile, ids, product_views = record.profile, record.identifiers, record.product_views
    identifiers: dict[str, list[str]] = {}
    for ident in sorted(ids, key=lambda i: int(ids[i])):
        kind, _, value = ident.decode().partition(":")
        identifiers.setdefault(PUBLIC_NAMES.get(kind, kind), []).append(value)
    cart = profile.get(b"cart")
    return {
        "id": contact_id,
        "identifiers": identifiers,
        "cart": orjson.loads(cart) if cart else None,
        "recentProducts": [
            _view(pid, score, product_views[pid])
            for pid, score in record.product_order
            if pid in product_views
        ],
        "recentCategories": [
            {"productCategoryId": cat.decode(), "viewedAt": iso(score)}
            for cat, score in record.categories
        ],
        "createdAt": stored_iso(profile.get(b"created")),
        "updatedAt": stored_iso(profile.get(b"updated")),
    }


def _view(product_id: bytes, score: float, stored: bytes) -> dict[str, Any]:
    """A recent product view from its :pvd value: whole JSON, or recommendations.py's compact
    `<lag>|<currency>|<other fields>`, rebuilt in the same order (view_json in lib.lua)."""
    if stored.startswith(b"{"):
        view: dict[str, Any] = orjson.loads(stored)
        return view
    lag, currency, rest = stored.split(b"|", 2)
    view = {"productId": product_id.decode(), **orjson.loads(b"{" + rest + b"}")}
    if currency:
        view["currencyCode"] = currency.decode()
    view["viewedAt"] = iso(int(score) - int(lag))
    return view


def _event(contact_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads(fields[b"e"])
    event["contactId"] = contact_id
    return event


async def contact_events(
    store: Store,
    keys: TenantKeys,
    contact_id: str,
    event_type: str | None,
    limit: int,
    before: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The contact's events older than the stream id `before` (None: from the newest), newest
    first, and the cursor to pass on as `before` (None: nothing older is listed)."""
    # Without a type the first `limit` ids are all it needs; with one, as for the tenant's
    # stream, at most MAX_SCAN past the cursor (the list holds `contact_events`, which may be
    # large). The list is newest first (stitching merges it in order: lib.lua merge_events), so
    # the entries before the cursor are skipped, a cost bounded by `contact_events`.
    count = limit if event_type is None else MAX_SCAN
    bound = None if before is None else stream_order(before)
    wanted: list[str] = []
    cursor, scanned, start, stopped = before, 0, 0, False
    while not stopped:
        entries = await store.contact_event_ids(keys, contact_id, count, start)
        start += len(entries)
        for entry in entries:
            code, stream_id = list_entry_event(entry.decode())
            if bound is not None and stream_order(stream_id) >= bound:
                continue
            scanned += 1
            cursor = stream_id
            if event_type is None or EVENT_TYPES.get(code, code) == event_type:
                wanted.append(stream_id)
            if len(wanted) == limit or scanned == MAX_SCAN:
                stopped = True
                break
        if len(entries) < count and not stopped:
            cursor = None  # the list is read to its end
            break
    found = await store.events_by_id(keys, wanted)
    # An id whose entry the capped stream has dropped reads as nothing.
    events = [_event(contact_id, fields) for fields in found if fields is not None]
    return events, cursor


async def tenant_events(
    store: Store,
    keys: TenantKeys,
    event_type: str | None,
    limit: int,
    before: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's events older than the stream id `before` (None: from the newest), newest
    first, at most MAX_SCAN read; and the cursor to pass on (None: the stream is read to its
    start)."""

    def of_type(fields: Hash) -> bool:
        return bool(orjson.loads(fields[b"e"])["eventTypeKey"] == event_type)

    rows, cursor = await newest_first(
        lambda last, count: store.events_before(keys, last, count),
        before,
        None if event_type is None else of_type,
        limit,
    )
    out = [_event(fields[b"c"].decode(), fields) for _, fields in rows]
    # The stream keeps the contact an event had when stored; name the one it is part of now.
    now = await current_contacts(store, keys, [event["contactId"] for event in out])
    for event in out:
        event["contactId"] = now[event["contactId"]] or event["contactId"]
    return out, cursor


async def rfm(store: Store, keys: TenantKeys, contact_id: str) -> dict[str, Any]:
    """Order count, revenue, average check and last order date of DELIVERED orders."""
    raw = await store.contact_rfm(keys, contact_id)
    count = int(raw.get(b"count", 0))
    revenue = round(float(raw.get(b"revenue", 0)), 6)
    return {
        "count": count,
        "revenue": revenue,
        "averageCheck": round(revenue / count, 2) if count else 0,
        "lastOrderDate": orjson.loads(raw[b"last"]) if b"last" in raw else None,
    }


async def requested_contact(request: Request) -> tuple[GatewayState, TenantKeys, str]:
    """The contact the path's {identifier} names for a server key's tenant; 404 when unknown."""
    state, principal = await server_principal(request)
    keys = state.tenant_keys(principal.tenant)
    contact_id = await find_contact(state.store, keys, request.path_params["identifier"])
    if contact_id is None:
        raise not_found("contact")
    return state, keys, contact_id


async def get_contact(request: Request) -> Response:
    state, keys, contact_id = await requested_contact(request)
    body = await read_contact(state.store, keys, contact_id)
    body["orders"] = await rfm(state.store, keys, contact_id)
    return json_response(body)


# GET /v1/contacts/{identifier} is routed by privacy.py, whose route takes its DELETE too.
routes: list[Route] = []
