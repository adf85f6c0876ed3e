"""Validation of one `v1/event` body into what the ingest script stores.

Everything that can be wrong with an event is found here, in Python, before Redis sees it: the Lua
script that stores a batch has no rollback, so it must only ever receive events it can store.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from . import identity, order_events
from .decoding import NotJson, decode_param, looks_like_json
from .errors import ApiError, invalid

EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
MAX_EVENT_ID = 128
MAX_PARAM_NAME = 100
MAX_PARAMS = 200
MAX_STRING = 65_536
RECOMMENDATION_TYPES = frozenset(
    {"pageViewed", "productViewed", "productCategoryViewed", "cartUpdated"}
)
ORDER_TYPES = frozenset({"orderCreated", "orderUpdated", "orderDelivered", "orderCancelled"})
KNOWN_TYPES = RECOMMENDATION_TYPES | ORDER_TYPES
WEB_SCHEMES = frozenset({"http", "https"})


@dataclass(slots=True)
class Params:
    by_lower: dict[str, Any]  # lower-cased name -> decoded value
    names: dict[str, str]  # lower-cased name -> name as sent
    stored: dict[str, Any]  # name as sent -> decoded value
    repaired: bool


@dataclass(slots=True)
class Prepared:
    """An event ready for the ingest script: `envelope` is the JSON the script decodes."""

    event_id: str
    event_type: str
    envelope: bytes
    repaired: bool


def number(value: Any, field: str, minimum: float | None = 0) -> float:
    """A number, also from a numeric string (eSputnik params are often strings)."""
    if isinstance(value, bool):
        raise invalid(field, f"{field} must be a number.")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise invalid(field, f"{field} must be a number.") from None
    if (
        not isinstance(value, (int, float))
        or value != value
        or value in (float("inf"), float("-inf"))
    ):
        raise invalid(field, f"{field} must be a number.")
    if minimum is not None and value < minimum:
        raise invalid(field, f"{field} must be at least {minimum:g}.")
    return value


def text_id(value: Any, field: str, limit: int = 256) -> str:
    """An id that may be sent as a string or a whole number."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(field, f"{field} must be a string.")
    text = str(value).strip()
    if not text:
        raise invalid(field, f"{field} must not be empty.", code="missing_field")
    if len(text) > limit:
        raise invalid(field, f"{field} is longer than {limit} characters.")
    return text


def read_params(raw: Any) -> Params:
    if raw is None:
        items: list[tuple[Any, Any, str]] = []
    elif isinstance(raw, list):
        items = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or "name" not in entry:
                raise invalid(f"params[{i}]", f"params[{i}] must be an object with name and value.")
            items.append((entry["name"], entry.get("value"), f"params[{i}].name"))
    elif isinstance(raw, dict):
        items = [(name, value, "params") for name, value in raw.items()]
    else:
        raise invalid("params", "params must be a list of {name, value} or an object.")
    if len(items) > MAX_PARAMS:
        raise invalid("params", f"params has more than {MAX_PARAMS} entries.")
    params = Params({}, {}, {}, False)
    for name, value, where in items:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_PARAM_NAME:
            raise invalid(where, f"{where} must be a string of 1-{MAX_PARAM_NAME} characters.")
        lower = name.lower()
        if lower in params.by_lower:
            raise invalid(
                f"params.{name}",
                f"The param {name!r} is given more than once.",
                code="duplicate_param",
            )
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise invalid(f"params.{name}", f"params.{name} is over {MAX_STRING} characters.")
            if looks_like_json(value):
                try:
                    value, repaired = decode_param(value)
                except NotJson:
                    raise invalid(
                        f"params.{name}", f"params.{name} is not valid JSON.", code="invalid_json"
                    ) from None
                params.repaired |= repaired
        params.by_lower[lower] = value
        params.names[lower] = name
        params.stored[name] = value
    return params


def _require_object(params: Params, lower: str, what: str) -> tuple[dict[str, Any], str]:
    field = f"params.{params.names.get(lower, lower)}"
    if lower not in params.by_lower:
        raise invalid(field, f"{what} events need the param {lower!r}.", code="missing_field")
    value = params.by_lower[lower]
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be a JSON object.")
    return value, field


def _currency(params: Params) -> str | None:
    value = params.by_lower.get("currencycode")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 16:
        raise invalid("params.currencyCode", "params.currencyCode must be a code like 'USD'.")
    return value


def _page_viewed(params: Params, received: str, raw: dict[str, Any]) -> dict[str, Any]:
    page, field = _require_object(params, "page", "pageViewed")
    location = page.get("location")
    if not isinstance(location, str) or not location.strip():
        raise invalid(
            f"{field}.location",
            f"{field}.location must be a URL or a deeplink.",
            code="missing_field",
        )
    match = URI_SCHEME.match(location.strip())
    if match is None or len(location) > 4096:
        raise invalid(
            f"{field}.location",
            f"{field}.location must be an absolute URL or deeplink (scheme://...).",
        )
    scheme = match.group(1).lower()
    raw["location"] = location.strip()
    raw["scheme"] = scheme
    raw["channel"] = "web" if scheme in WEB_SCHEMES else "app"
    return {}


def _product_viewed(params: Params, received: str, raw: dict[str, Any]) -> dict[str, Any]:
    product, field = _require_object(params, "product", "productViewed")
    if "productId" not in product:
        raise invalid(f"{field}.productId", f"{field}.productId is required.", code="missing_field")
    product_id = text_id(product["productId"], f"{field}.productId")
    view = dict(product)
    view["productId"] = product_id
    if "price" in product:
        view["price"] = number(product["price"], f"{field}.price")
    if "isInStock" in product:
        stock = product["isInStock"]
        if stock not in (0, 1, "0", "1") or isinstance(stock, bool):
            raise invalid(f"{field}.isInStock", f"{field}.isInStock must be 0 or 1.")
        view["isInStock"] = int(stock)
    if "quantity" in product:
        view["quantity"] = number(product["quantity"], f"{field}.quantity")
    currency = _currency(params)
    if currency is not None:
        view["currencyCode"] = currency
    view["viewedAt"] = received
    return {"pv": [product_id, orjson.dumps(view).decode()]}


def _category_viewed(params: Params, received: str, raw: dict[str, Any]) -> dict[str, Any]:
    category, field = _require_object(params, "category", "productCategoryViewed")
    if "productCategoryId" not in category:
        raise invalid(
            f"{field}.productCategoryId",
            f"{field}.productCategoryId is required.",
            code="missing_field",
        )
    return {"cv": text_id(category["productCategoryId"], f"{field}.productCategoryId")}


def _cart_updated(params: Params, received: str, raw: dict[str, Any]) -> dict[str, Any]:
    names = params.names
    if "recyclestateid" not in params.by_lower:
        raise invalid(
            "params.recycleStateId",
            "cartUpdated events need a recycleStateId.",
            code="missing_field",
        )
    rsid = text_id(
        params.by_lower["recyclestateid"], f"params.{names['recyclestateid']}", limit=128
    )
    products = params.by_lower.get("products")
    field = f"params.{names.get('products', 'products')}"
    if products is None or products == "":
        products = []
    if not isinstance(products, list):
        raise invalid(field, f"{field} must be a JSON array of products.")
    total = 0.0
    cart_products = []
    for i, item in enumerate(products):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, f"{where} must be an object.")
        for required in ("productId", "quantity", "price"):
            if required not in item:
                raise invalid(
                    f"{where}.{required}", f"{where}.{required} is required.", code="missing_field"
                )
        line = dict(item)
        line["productId"] = text_id(item["productId"], f"{where}.productId")
        line["quantity"] = number(item["quantity"], f"{where}.quantity")
        line["price"] = number(item["price"], f"{where}.price")
        total += line["price"] * line["quantity"]
        cart_products.append(line)
    cart = {
        "recycleStateId": rsid,
        "products": cart_products,
        "currencyCode": _currency(params),
        "total": round(total, 6),
        "updatedAt": received,
    }
    return {"cart": [rsid, orjson.dumps(cart).decode(), not cart_products]}


TypeHandler = Callable[[Params, str, dict[str, Any]], dict[str, Any]]
TYPE_HANDLERS: dict[str, TypeHandler] = {
    "pageViewed": _page_viewed,
    "productViewed": _product_viewed,
    "productCategoryViewed": _category_viewed,
    "cartUpdated": _cart_updated,
}


def _optional_timestamp(body: dict[str, Any]) -> str | None:
    occurred = body.get("occurredAt")
    if occurred is None:
        return None
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
    event_type = body.get("eventTypeKey")
    if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type):
        raise invalid(
            "eventTypeKey",
            "eventTypeKey must be 1-100 characters of A-Z a-z 0-9 _ . -",
            code="missing_field" if event_type is None else "invalid_field",
        )
    if site_key and event_type in ORDER_TYPES:
        raise ApiError(
            403, "forbidden", f"A site key may not send {event_type} events.", "eventTypeKey"
        )
    given_id = body.get("eventId")
    if given_id is not None and (
        not isinstance(given_id, str) or not 0 < len(given_id) <= MAX_EVENT_ID
    ):
        raise invalid("eventId", f"eventId must be a string of 1-{MAX_EVENT_ID} characters.")
    event_id = given_id or secrets.token_hex(12)
    params = read_params(body.get("params"))
    idents = identity.collect(
        params.by_lower, params.names, body.get("keyValue"), body.get("visitorId")
    )
    order: dict[str, Any] = {}
    if event_type in ORDER_TYPES:  # the order's externalCustomerId names the contact too
        order, idents = order_events.prepare(
            event_type, params.by_lower, params.names, idents, received
        )
    if not idents:
        raise invalid(
            "keyValue",
            "The event names no contact: send keyValue, visitorId or an email/phone param.",
            code="missing_identifier",
        )
    raw: dict[str, Any] = {"eventId": event_id, "eventTypeKey": event_type, "receivedAt": received}
    occurred = _optional_timestamp(body)
    if occurred is not None:
        raw["occurredAt"] = occurred
    for name in ("keyValue", "visitorId"):
        if body.get(name) is not None:
            raw[name] = body[name]
    handler = TYPE_HANDLERS.get(event_type)
    extra = handler(params, received, raw) if handler is not None else order
    raw["params"] = params.stored
    if params.repaired:
        raw["repaired"] = True
    envelope = {
        "id": event_id,
        "d": given_id is not None,
        "ty": event_type,
        "ids": idents,
        "nc": secrets.token_hex(8),
        "raw": orjson.dumps(raw).decode(),
        **extra,
    }
    return Prepared(event_id, event_type, orjson.dumps(envelope), params.repaired)
