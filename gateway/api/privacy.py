"""A contact's data handed over and erased, and suppressed identifiers (docs/privacy.md):
`GET /v1/contacts/{identifier}/export`, `DELETE /v1/contacts/{identifier}`,
`GET /v1/erasures/{id}`, `DELETE /v1/suppressions/{identifier}` (`?suppress=true` of the
erasure adds them)."""

from __future__ import annotations

import logging
import re

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.contacts import (
    contact_events,
    current_contacts,
    get_contact,
    read_contact,
    requested_contact,
    rfm,
)
from gateway.api.orders import order_document
from gateway.auth import Principal
from gateway.background.eraser import start_erasure
from gateway.errors import invalid
from gateway.http import MAX_SCAN, PAGE, json_response, not_found
from gateway.model.identity import lookup_candidates
from gateway.redis.constants import PUBLIC_NAMES
from gateway.redis.keys import TenantKeys, suppression_digest
from gateway.redis.store import Store
from gateway.state import GatewayState, server_principal

log = logging.getLogger("gateway.privacy")
ERASURE_ID = re.compile(r"[0-9a-f]{16}")
COUNT_FIELD = b"n:"


async def export_contact(request: Request) -> Response:
    gateway, keys, contact_id = await requested_contact(request)
    store = gateway.store
    body = await read_contact(store, keys, contact_id)
    body["rfm"] = await rfm(store, keys, contact_id)
    # every event its list still names (the newest `contact_events`) that the stream still holds
    limit = gateway.settings.contact_events
    body["events"], _ = await contact_events(store, keys, contact_id, None, limit)
    orders = []
    for order_id in await store.contact_order_ids(keys, contact_id):
        order = await order_document(gateway, keys, order_id)
        if order is not None:
            orders.append(order)
    body["orders"] = orders
    body["triggers"] = await contact_triggers(gateway, keys, contact_id)
    return json_response(body)


async def contact_triggers(
    gateway: GatewayState, keys: TenantKeys, contact_id: str
) -> list[orjson.Fragment]:
    """The triggers emitted for the contact among the newest MAX_SCAN of the stream (a trigger
    names its contact's id as a JSON string), oldest first."""
    needle = orjson.dumps(contact_id)
    found: list[orjson.Fragment] = []
    last, scanned = "+", 0
    while scanned < MAX_SCAN:
        rows = await gateway.store.triggers_before(keys, last, PAGE)
        scanned += len(rows)
        found += [orjson.Fragment(f[b"trigger"]) for _, f in rows if needle in f[b"trigger"]]
        if len(rows) < PAGE:
            break
        last = "(" + rows[-1][0].decode()
    found.reverse()
    return found


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
