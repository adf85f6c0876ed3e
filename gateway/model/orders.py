"""Validation of orders (docs/api.md, Orders and carts) into what the order Lua library stores.

The same rules serve `POST /v1/orders` (every problem of an order is listed, the order fails) and
the order events of `v1/event` (a malformed value is a 400; a missing required param makes the
event "ignored", as eSputnik does). Stored field values are JSON texts made here by orjson, so the
Lua side only concatenates them and never re-encodes a number.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.model.decoding import (
    MAX_DEPTH,
    NotJson,
    TooDeep,
    decode_param,
    looks_like_json,
    nested_deeper_than,
    number_text,
)
from gateway.model.identity import PHONE

STATUSES = ("INITIALIZED", "IN_PROGRESS", "DELIVERED", "CANCELLED", "ABANDONED_SHOPPING_CART")
REQUIRED = ("externalOrderId", "status", "totalCost", "date")
CONTACT_FIELDS = ("externalCustomerId", "email", "phone")
DATE = re.compile(  # ASCII digits only: `\d` would take any script's digits
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
MAX_ID = 256
MAX_RSID = 128
NUMBERS = ("totalCost", "shipping", "discount")
# Revenue is summed in Redis (HINCRBYFLOAT), which errors out on an infinite sum mid-script.
MAX_AMOUNT = 1e15


@dataclass(slots=True)
class Checked:
    """One order after validation: `fields` are the normalised values (None: not sent)."""

    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field name, sentence)
    missing: list[str] = field(default_factory=list)  # required fields not sent

    def value(self, name: str) -> Any:
        return self.fields.get(name)


def _text(value: Any, name: str, limit: int, checked: Checked) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        checked.errors.append((name, f"{name} must be a string."))
        return None
    text = str(value).strip()
    if len(text) > limit:
        checked.errors.append((name, f"{name} is longer than {limit} characters."))
        return None
    return text or None


def _number(value: Any, name: str, checked: Checked) -> float | int | None:
    """A number ≥ 0; eSputnik clients often send numbers as strings ("258.0")."""
    if value is None or value == "":
        return None
    number: Any = value
    if isinstance(value, str):
        try:
            number = number_text(value)
        except ValueError:
            number = None
    if (
        isinstance(number, bool)
        or not isinstance(number, (int, float))
        or number != number
        or number in (float("inf"), float("-inf"))
        or not 0 <= number <= MAX_AMOUNT
    ):
        checked.errors.append((name, f"{name} must be a number from 0 to {MAX_AMOUNT:g}."))
        return None
    return number


def _date(value: Any, checked: Checked) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DATE.fullmatch(value.strip()):
        checked.errors.append(("date", "date must look like YYYY-MM-ddTHH:mm:ss (+offset)."))
        return None
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        checked.errors.append(("date", "date is not a real date and time."))
        return None
    return value.strip()


def date_ms(date: str) -> int:
    """Milliseconds since the epoch; a date without an offset is taken as UTC."""
    moment = datetime.fromisoformat(date)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _items(value: Any, checked: Checked) -> list[Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if not looks_like_json(value):
            checked.errors.append(("items", "items must be an array or a JSON string of one."))
            return None
        try:
            value, _ = decode_param(value)
        except TooDeep:
            checked.errors.append(("items", f"items nests deeper than {MAX_DEPTH} levels."))
            return None
        except NotJson:
            checked.errors.append(("items", "items is not valid JSON."))
            return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        checked.errors.append(("items", "items must be an array of objects."))
        return None
    return value


def check(raw: dict[str, Any]) -> Checked:
    """Validate every field that is present; record the required ones that are not."""
    checked = Checked()
    fields = checked.fields
    for name, value in raw.items():
        if nested_deeper_than(value, MAX_DEPTH):  # it could not be stored and read back
            checked.errors.append((name, f"{name} nests deeper than {MAX_DEPTH} levels."))
        elif name not in fields:
            fields[name] = value  # extra fields are kept as sent
    order_id = _text(raw.get("externalOrderId"), "externalOrderId", MAX_ID, checked)
    fields["externalOrderId"] = order_id
    status = raw.get("status")
    if status is None or status == "":
        fields["status"] = None
    elif isinstance(status, str) and status.strip().upper() in STATUSES:
        fields["status"] = status.strip().upper()
    else:
        fields["status"] = None
        checked.errors.append(("status", f"status must be one of {', '.join(STATUSES)}."))
    for name in NUMBERS:
        fields[name] = _number(raw.get(name), name, checked)
    fields["date"] = _date(raw.get("date"), checked)
    fields["externalCustomerId"] = _text(
        raw.get("externalCustomerId"), "externalCustomerId", MAX_ID, checked
    )
    email = _text(raw.get("email"), "email", MAX_ID, checked)
    fields["email"] = email.lower() if email else None
    phone = _text(raw.get("phone"), "phone", MAX_ID, checked)
    if phone is not None and not PHONE.fullmatch(phone):
        checked.errors.append(("phone", "phone must be digits with an optional leading '+'."))
        phone = None
    fields["phone"] = phone
    fields["recycleStateId"] = _text(raw.get("recycleStateId"), "recycleStateId", MAX_RSID, checked)
    currency = raw.get("currency")
    if currency is not None and (not isinstance(currency, str) or len(currency) > 16):
        checked.errors.append(("currency", "currency must be a code like 'USD'."))
    fields["items"] = _items(raw.get("items"), checked)
    for name in REQUIRED:
        if fields[name] is None and not any(e[0] == name for e in checked.errors):
            checked.missing.append(name)
    return checked


def stored_fields(checked: Checked) -> dict[str, str]:
    """name -> JSON text of every field that has a value (what the order hash keeps)."""
    return {
        name: orjson.dumps(value).decode()
        for name, value in checked.fields.items()
        if value is not None
    }


def envelope(checked: Checked, op: str, source: str, received: str) -> dict[str, Any]:
    """What the Lua `apply_order` needs; `op` is put (whole order), update or status."""
    fields = checked.fields
    date = fields.get("date")
    found = {
        "eoid": fields["externalOrderId"],
        "op": op,
        "f": stored_fields(checked),
        "st": fields.get("status"),
        "rsid": fields.get("recycleStateId"),
        "dms": str(date_ms(date)) if date else None,
        "oid": secrets.token_hex(8),
        "tid": secrets.token_hex(12),
        "at": received,
        "src": source,
    }
    # cjson reads a JSON null as a truthy sentinel: absent keys are the only "nothing" in Lua.
    return {key: value for key, value in found.items() if value is not None}
