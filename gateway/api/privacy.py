"""A contact's data handed over and erased, and suppressed identifiers (docs/privacy.md):
`GET /v1/contacts/{identifier}/export`, `DELETE /v1/contacts/{identifier}`,
`GET /v1/erasures/{id}`, `DELETE /v1/suppressions/{identifier}` (`?suppress=true` of the
erasure adds them)."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.contacts import (
    contact_document,
    current_contacts,
    get_contact,
    requested_contact,
    rfm,
)
from gateway.api.orders import contact_orders
from gateway.auth import Principal
from gateway.background.eraser import start_erasure
from gateway.clock import iso, now_ms
from gateway.errors import invalid
from gateway.http import json_response, not_found
from gateway.model.identity import lookup_candidates
from gateway.redis.arguments import ExportChunk
from gateway.redis.constants import EVENT_CODES, PUBLIC_NAMES, VISIT_FIELD
from gateway.redis.keys import TenantKeys, suppression_digest
from gateway.redis.reads import ContactRecord, fields_under
from gateway.redis.store import Store
from gateway.state import server_principal

log = logging.getLogger("gateway.privacy")
ERASURE_ID = re.compile(r"[0-9a-f]{16}")
COUNT_FIELD = b"n:"
EXPORT_CHUNK = 500  # stream entries export.lua reads a call: about 2 ms of Redis (privacy.md)
# an open visit's counts by type (constants.py VISIT_FIELDS) under the names the export gives them
VISIT_COUNTS = {code: kind for kind, code in EVENT_CODES.items()} | {"x": "other", "o": "orders"}


async def export_contact(request: Request) -> Response:
    gateway, keys, contact_id = await requested_contact(request)
    store = gateway.store
    record = await store.contact_record(keys, contact_id)
    body = contact_document(contact_id, record)
    body["openVisit"] = open_visit(record)
    body["rfm"] = await rfm(store, keys, contact_id)
    body["events"] = [
        {**orjson.loads(e), "contactId": contact_id}
        for e in await stream_entries(store, keys, "events", contact_id)
    ]
    body["orders"] = await contact_orders(gateway, keys, contact_id)
    triggers = await stream_entries(store, keys, "triggers", contact_id)
    body["triggers"] = [orjson.Fragment(t) for t in reversed(triggers)]  # oldest first
    return json_response(body)


async def stream_entries(
    store: Store, keys: TenantKeys, source: str, contact_id: str
) -> list[bytes]:
    """The bodies of the contact's entries in the whole event or trigger stream, newest first,
    read in chunks of EXPORT_CHUNK (export.lua)."""
    found: list[bytes] = []
    cursor = ""
    while True:
        call = ExportChunk(keys.prefix, source, contact_id, cursor, EXPORT_CHUNK)
        next_cursor, *bodies = await store.run("export", call, now_ms())
        found += bodies
        cursor = next_cursor.decode()
        if not cursor:
            return found


def open_visit(record: ContactRecord) -> dict[str, Any] | None:
    """The contact's open visit (keys.py): its first and last event and its events by type."""
    visit = fields_under(record.profile, VISIT_FIELD)
    if b"start" not in visit:
        return None
    counts = {
        VISIT_COUNTS[name.decode()]: int(n)
        for name, n in visit.items()
        if name.decode() in VISIT_COUNTS
    }
    return {
        "startedAt": iso(int(visit[b"start"])),
        "lastEventAt": iso(int(visit[b"last"])),
        "events": int(visit.get(b"n", 0)),
        "eventsByType": counts,
    }


async def locate(store: Store, keys: TenantKeys, identifier: str) -> tuple[str, str] | None:
    """(contact id, the kind of identifier that named it) as `find_contact` finds it; the kind
    is for the audit log, which never holds the value."""
    if not identifier or len(identifier) > 512:
        return None
    candidates = lookup_candidates(identifier)
    for (kind, _), contact_id in zip(
        candidates, await store.named_contacts(keys, candidates), strict=True
    ):
        if contact_id is not None:
            return contact_id, PUBLIC_NAMES.get(kind, kind)
    contact_id = (await current_contacts(store, keys, [identifier]))[identifier]
    return None if contact_id is None else (contact_id, "gatewayContactId")


def audit(action: str, principal: Principal, kind: str, **extra: str) -> None:
    """Who (the key's id: the first 8 hex digits of its SHA-256) did what to which kind of
    identifier; never the key, never the value."""
    tenant = principal.tenant.id
    log.info(action, extra={"tenant": tenant, "keyId": principal.key_id[:8], "kind": kind, **extra})


async def erase_contact(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    suppress = request.query_params.get("suppress", "false")
    if suppress not in ("true", "false"):
        raise invalid("suppress", "suppress must be true or false.")
    keys = gateway.tenant_keys(principal.tenant)
    found = await locate(gateway.store, keys, request.path_params["identifier"])
    erasure = None
    if found is not None:
        erasure = await start_erasure(gateway, principal.tenant, found[0], suppress == "true")
    if found is None or erasure is None:
        raise not_found("contact")
    tenant = principal.tenant.id
    gateway.metrics.erasures_started.inc(tenant)
    audit("contact erased", principal, found[1], erasure=erasure)
    if suppress == "true":
        gateway.metrics.suppressions.inc(tenant, "added")
        audit("contact suppressed", principal, found[1], erasure=erasure)
    return json_response({"erasure": erasure, "status": "running"}, 202)


async def lift_suppression(request: Request) -> Response:
    """Lift the suppression of every identifier the path may be stored as (lookup_candidates)."""
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    identifier = request.path_params["identifier"]
    candidates = lookup_candidates(identifier) if 0 < len(identifier) <= 512 else []
    digests = [suppression_digest(kind, value) for kind, value in candidates]
    lifted = await gateway.store.lift_suppressions(keys, digests)
    kinds = sorted(
        {
            PUBLIC_NAMES.get(kind, kind)
            for (kind, _), was in zip(candidates, lifted, strict=True)
            if was
        }
    )
    if not kinds:
        raise not_found("suppressed identifier")
    for kind in kinds:
        gateway.metrics.suppressions.inc(principal.tenant.id, "lifted")
        audit("suppression lifted", principal, kind)
    return json_response({"lifted": kinds})


async def contact(request: Request) -> Response:
    """`/v1/contacts/{identifier}`: GET reads the contact (contacts.py), DELETE erases it. One
    route, so that a 405 names both methods."""
    if request.method == "DELETE":
        return await erase_contact(request)
    return await get_contact(request)


async def get_erasure(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    keys = gateway.tenant_keys(principal.tenant)
    erasure = request.path_params["erasure"]
    record = (
        await gateway.store.erasure_record(keys, erasure) if ERASURE_ID.fullmatch(erasure) else {}
    )
    if not record:
        raise not_found("erasure")
    counts = {
        name[len(COUNT_FIELD) :].decode(): int(value)
        for name, value in sorted(record.items())
        if name.startswith(COUNT_FIELD)
    }
    body = {"erasure": erasure, "status": record[b"status"].decode(), "counts": counts}
    return json_response(body)


routes = [
    Route("/v1/contacts/{identifier:text}/export", export_contact),
    Route("/v1/contacts/{identifier:text}", contact, methods=["GET", "DELETE"]),
    Route("/v1/erasures/{erasure:text}", get_erasure),
    Route("/v1/suppressions/{identifier:text}", lift_suppression, methods=["DELETE"]),
]
