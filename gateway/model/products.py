"""Validation of one `POST /v1/products` entry (docs/api.md, Products) into what products.lua
stores: the product's fields as JSON texts, the catalog's own truth about price and stock."""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway.errors import ApiError
from gateway.model.params import number, text_id

CURRENCY = re.compile(r"[A-Za-z]{3}")
MAX_FIELDS = 200  # per product, as params per event (model/params.py)
# Set by the gateway on every change; a value sent for it is replaced.
UPDATED_AT = "updatedAt"


def check(raw: Any, where: str) -> tuple[list[tuple[str, str]], list[Any] | None]:
    """(every (field, message) that is wrong with the entry, or products.lua's item for it:
    [productId, [field, JSON text, ...]])."""
    if not isinstance(raw, dict):
        return [(where, f"{where} must be a JSON object.")], None
    if len(raw) > MAX_FIELDS:
        return [(where, f"{where} has more than {MAX_FIELDS} fields.")], None
    errors: list[tuple[str, str]] = []
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        field = f"{where}.{name}"
        try:
            fields[name] = _value(name, value, field)
        except ApiError as error:
            errors.append((error.field or field, error.message))
    if "productId" not in raw:
        errors.insert(0, (f"{where}.productId", f"{where}.productId is required."))
    if errors:
        return errors, None
    fields.pop(UPDATED_AT, None)
    pairs: list[str] = []
    for name, value in fields.items():
        pairs += [name, orjson.dumps(value).decode()]
    return [], [fields["productId"], pairs]


def _value(name: str, value: Any, field: str) -> Any:
    """The value as stored: productId as events take it, price a number at least 0, currencyCode
    three letters (upper-cased), isInStock 0 or 1; any other field as it is."""
    if name == "productId":
        return text_id(value, field)
    if name == "price":
        return number(value, field)
    if name == "currencyCode":
        if not isinstance(value, str) or not CURRENCY.fullmatch(value):
            raise ApiError(400, "invalid_field", f"{field} must be three letters, like USD.", field)
        return value.upper()
    if name == "isInStock":
        if value not in (0, 1, "0", "1") or isinstance(value, bool):
            raise ApiError(400, "invalid_field", f"{field} must be 0 or 1.", field)
        return int(value)
    return value
