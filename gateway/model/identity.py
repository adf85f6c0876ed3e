"""Contact identifiers: which params carry them, their kinds, and how values are normalised.

eSputnik's default identifier params (seed 001), matched without regard to case. Email values are
compared lower-cased and trimmed; all other values are kept as sent (case-sensitive). Phones are
digits with an optional leading `+`. `keyValue` is classified by its shape: an email if it has an
`@`, a phone if it is one, otherwise an opaque `key`. `visitorId` is the anonymous device id.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import ApiError, invalid
from gateway.redis.constants import KIND_ORDER

# lower-cased param name -> identifier kind
IDENTIFIER_PARAMS: dict[str, str] = {
    "contactid": "contactId",
    "contact_id": "contactId",
    "email": "email",
    "emailaddress": "email",
    "useremail": "email",
    "contactemail": "email",
    "phone": "phone",
    "sms": "phone",
    "phonenumber": "phone",
    "pushtoken": "pushToken",
    "contactkey": "contactKey",
    "contact_key": "contactKey",
    "externalcustomerid": "customer",
}
PHONE = re.compile(r"\+?[0-9]{3,20}")  # fullmatch: `$` would let a final "\n" through
MAX_IDENTIFIER = 256


def normalise(kind: str, value: Any, prefix: str, name: str) -> str | None:
    """The stored form of an identifier value, None for an empty one; 400 for a bad one.

    The field an error names is `prefix + name`, joined only for an error.
    """
    if type(value) is str:
        text = value
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(prefix + name, f"{prefix}{name} must be a string.")
    else:
        text = str(value)
    if kind == "email":
        text = text.strip().lower()
    if not text:
        return None
    if len(text) > MAX_IDENTIFIER:
        raise invalid(prefix + name, f"{prefix}{name} is longer than {MAX_IDENTIFIER} characters.")
    if kind == "phone" and not PHONE.fullmatch(text):
        raise invalid(
            prefix + name,
            f"{prefix}{name} must be a phone number: digits with an optional leading '+'.",
            code="invalid_phone",
        )
    return text


def classify_key_value(value: str) -> str:
    if "@" in value:
        return "email"
    if PHONE.fullmatch(value):
        return "phone"
    return "key"


def collect(
    params: dict[str, Any],
    names: dict[str, str],
    key_value: Any,
    visitor_id: Any,
) -> list[str]:
    """`kind:value` strings of an event, most decisive first, without repeats.

    `names` maps lower-cased param names to the names as sent (for error messages). Ties of rank
    keep the order of IDENTIFIER_PARAMS.
    """
    found: list[tuple[int, int, str]] = []  # (rank, slot, identifier): sorted without a key
    try:
        for lower in params:  # an event has a few params; IDENTIFIER_PARAMS has a dozen names
            spec = _SLOTS.get(lower)
            if spec is not None:
                rank, slot, kind = spec
                text = normalise(kind, params[lower], "params.", names[lower])
                if text is not None:
                    found.append((rank, slot, f"{kind}:{text}"))
    except ApiError:
        # Of several bad identifier params, the first in IDENTIFIER_PARAMS order is reported.
        for lower, kind in IDENTIFIER_PARAMS.items():
            if lower in params:
                normalise(kind, params[lower], "params.", names[lower])
        raise
    if key_value is not None:
        if isinstance(key_value, bool) or not isinstance(key_value, (str, int)):
            raise invalid("keyValue", "keyValue must be a string.")
        raw = str(key_value).strip()
        if raw:
            kind = classify_key_value(raw)
            text = normalise(kind, raw, "", "keyValue")
            if text is not None:
                found.append((_RANK[kind], _LAST, f"{kind}:{text}"))
    if visitor_id is not None:
        if not isinstance(visitor_id, str):
            raise invalid("visitorId", "visitorId must be a string.")
        text = normalise("visitor", visitor_id, "", "visitorId")
        if text is not None:
            found.append((_RANK["visitor"], _LAST, f"visitor:{text}"))
    found.sort()
    idents: list[str] = []
    for _, _, ident in found:
        if ident not in idents:
            idents.append(ident)
    return idents


_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
# lower-cased param name -> (rank of its kind, its place in IDENTIFIER_PARAMS, its kind); keyValue
# and visitorId come after every param of the same rank.
_SLOTS = {
    lower: (_RANK[kind], slot, kind) for slot, (lower, kind) in enumerate(IDENTIFIER_PARAMS.items())
}
_LAST = len(IDENTIFIER_PARAMS)


def lookup_candidates(identifier: str) -> list[tuple[str, str]]:
    """(kind, value) pairs an identifier typed by a reader may be stored under, likeliest first."""
    text = identifier.strip()
    candidates: list[tuple[str, str]] = []
    if "@" in text:
        candidates.append(("email", text.lower()))
    if PHONE.fullmatch(text):
        candidates.append(("phone", text))
    for kind in ("contactId", "contactKey", "pushToken", "customer", "key", "visitor"):
        candidates.append((kind, identifier))
    if text != identifier:  # keyValue is stored without surrounding space, params as sent
        candidates.append(("key", text))
    if "@" not in text:  # emails are not validated (seed 003's is "[email protected]")
        candidates.append(("email", text.lower()))
    return candidates
