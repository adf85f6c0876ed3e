"""Validation of one `v1/event` body into what the ingest script stores.

Everything that can be wrong with an event is found here, in Python, before Redis sees it: the Lua
script that stores a batch has no rollback, so it must only ever receive events it can store.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.errors import ApiError, invalid
from gateway.model import identity, order_events
from gateway.model.params import read_params
from gateway.model.recommendations import TYPE_HANDLERS
from gateway.redis.arguments import PARTS

# An eventTypeKey, and a trigger type (GET /v1/triggers?type=). fullmatch: `$` lets a final "\n"
# through.
EVENT_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
MAX_EVENT_ID = 128
RECOMMENDATION_TYPES = frozenset(TYPE_HANDLERS)
ORDER_TYPES = frozenset({"orderCreated", "orderUpdated", "orderDelivered", "orderCancelled"})
KNOWN_TYPES = RECOMMENDATION_TYPES | ORDER_TYPES


class _Ids:
    """Event ids (24 hex digits) and contact ids (the same 96 bits in 16 base64url characters),
    from a counter and a random per-process key.

    They must be unique (across processes and restarts), not secret, and two `secrets.token_hex`
    calls per event (a system call each) showed up in the ingest profile; a counter does not. The
    count is mixed so that every digit changes from one id to the next: Redis' Lua hashes a long
    string from one character in `len / 32 + 1`, and raw events differing only in a counter's
    last digits (as a prefix and a plain counter made them) fell into one chain of its string
    table, which Lua then compared on every new string: about 40 % of Redis' time on the
    benchmark's batches (measured). In a raw event under 768 bytes, the generated eventId (its
    characters 12-35) now always has a hashed character, and it changes from one id to the next.
    """

    MODULUS = 1 << 96
    MULTIPLIER = 0x9E3779B97F4A7C15F39CC061  # odd: no two counts give the same id

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.key = secrets.randbits(96)
        self.counter = itertools.count()

    def mixed(self) -> int:
        return (next(self.counter) * self.MULTIPLIER + self.key) % self.MODULUS

    def new(self) -> str:
        return f"{self.mixed():024x}"

    def new_contact(self) -> str:
        """The same 96 bits in 16 base64url characters (A-Z a-z 0-9 - _): a contact id is part of
        the name of each of its keys and the value of each of its identifier keys, and 8
        characters fewer there save about 100 bytes of Redis per contact (measured with
        `MEMORY USAGE`: the key names drop into smaller allocation classes)."""
        return base64.urlsafe_b64encode(self.mixed().to_bytes(12, "big")).decode()


_ids = _Ids()
new_id = _ids.new
new_contact_id = _ids.new_contact


# The envelope: ingest.lua's item per event, read by position (arguments.ENVELOPE).
_ABSENT = {name: [False] * place for place, name in enumerate(PARTS)}


@dataclass(slots=True)
class Prepared:
    """An event ready for the ingest script: `envelope` is the JSON the script decodes, `raw` the
    event as the stream keeps it (apart, so that Lua never decodes and re-encodes it)."""

    event_id: str
    event_type: str
    envelope: bytes
    raw: bytes
    repaired: bool


def _timestamp(occurred: Any) -> str:
    if not isinstance(occurred, str) or len(occurred) > 64:
        raise invalid("occurredAt", "occurredAt must be an ISO-8601 timestamp.")
    try:
        datetime.fromisoformat(occurred)
    except ValueError:
        raise invalid("occurredAt", "occurredAt must be an ISO-8601 timestamp.") from None
    return occurred


def prepare(body: Any, site_key: bool, received: str) -> Prepared:
    """Validate one event; `received` is the gateway's ISO receive time."""
    if not isinstance(body, dict):
        raise invalid("body", "The body must be a JSON event object.")
    get = body.get
    event_type = get("eventTypeKey")
    # Known types match EVENT_TYPE: only others need the regular expression.
    if not isinstance(event_type, str) or (
        event_type not in KNOWN_TYPES and not EVENT_TYPE.fullmatch(event_type)
    ):
        raise invalid(
            "eventTypeKey",
            "eventTypeKey must be 1-100 characters of A-Z a-z 0-9 _ . -",
            code="missing_field" if event_type is None else "invalid_field",
        )
    is_order = event_type in ORDER_TYPES
    if site_key and is_order:
        raise ApiError(
            403, "forbidden", f"A site key may not send {event_type} events.", "eventTypeKey"
        )
    given_id = get("eventId")
    if given_id is not None and (
        not isinstance(given_id, str) or not 0 < len(given_id) <= MAX_EVENT_ID
    ):
        raise invalid("eventId", f"eventId must be a string of 1-{MAX_EVENT_ID} characters.")
    event_id = given_id or new_id()
    params = read_params(get("params"))
    key_value = get("keyValue")
    visitor_id = get("visitorId")
    idents = identity.collect(params.by_lower, params.names, key_value, visitor_id)
    part: tuple[str, Any] | None = None
    if is_order:  # the order's externalCustomerId names the contact too
        part, idents = order_events.prepare(
            event_type, params.by_lower, params.names, idents, received
        )
    if not idents:
        raise invalid(
            "keyValue",
            "The event names no contact: send keyValue, visitorId or an email/phone param.",
            code="missing_identifier",
        )
    raw: dict[str, Any] = {"eventId": event_id, "eventTypeKey": event_type, "receivedAt": received}
    occurred = get("occurredAt")
    if occurred is not None:
        raw["occurredAt"] = _timestamp(occurred)
    if key_value is not None:
        raw["keyValue"] = key_value
    if visitor_id is not None:
        raw["visitorId"] = visitor_id
    handler = TYPE_HANDLERS.get(event_type)
    if handler is not None:
        part = handler(params, received, raw)
    raw["params"] = params.stored
    if params.repaired:
        raw["repaired"] = True
    envelope = [event_id, given_id is not None, event_type, idents, new_contact_id()]
    if part is not None:
        name, value = part
        envelope += _ABSENT[name]
        envelope.append(value)
    return Prepared(
        event_id, event_type, orjson.dumps(envelope), orjson.dumps(raw), params.repaired
    )
