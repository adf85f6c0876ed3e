"""The four recommendation events (seed 004): what each must carry and what it stores."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from gateway.clock import iso_ms
from gateway.errors import invalid
from gateway.model.params import Params, currency_code, number, require_object, text_id

URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
WEB_SCHEMES = frozenset({"http", "https"})
MAX_LOCATION = 4096
_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what JSON must escape in a string


def _page_viewed(params: Params, received: str, raw: dict[str, Any]) -> None:
    page, field = require_object(params, "page", "pageViewed")
    location = page.get("location")
    if not isinstance(location, str) or not location.strip():
        raise invalid(
            f"{field}.location",
            f"{field}.location must be a URL or a deeplink.",
            code="missing_field",
        )
    if len(location) > MAX_LOCATION:
        raise invalid(
            f"{field}.location", f"{field}.location is longer than {MAX_LOCATION} characters."
        )
    match = URI_SCHEME.match(location.strip())
    if match is None:
        raise invalid(
            f"{field}.location",
            f"{field}.location must be an absolute URL or deeplink (scheme://...).",
        )
    scheme = match.group(1).lower()
    raw["location"] = location.strip()
    raw["scheme"] = scheme
    raw["channel"] = "web" if scheme in WEB_SCHEMES else "app"


def _product_viewed(params: Params, received: str, raw: dict[str, Any]) -> tuple[str, Any]:
    product, field = require_object(params, "product", "productViewed")
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
    currency = currency_code(params)
    return "pv", _stored_view(view, product_id, currency, received)


def _stored_view(
    view: dict[str, Any], product_id: str, currency: str | None, received: str
) -> list[Any]:
    """The `pv` envelope part: [productId, stored value, receive ms (compact form only)].

    A contact keeps recent_views of these, so the usual view (productId first, plain ids) is
    stored compact, `<lag>|<currency>|<the other fields' JSON without braces>`: productId is the
    hash field, viewedAt the :pv score less <lag> (ingest.lua fills it in: a merged script call
    stores at its latest time), currencyCode the text between the bars. Readers rebuild the
    same JSON (view_json in lib.lua, contacts.py). Any other view is stored whole, as JSON.
    """
    # Plain ids are what JSON writes as they are between quotes, so readers can rebuild the JSON
    # by hand (the values come from orjson, so no lone surrogate); a currency has no bar either.
    if (
        next(iter(view)) == "productId"
        and "currencyCode" not in view
        and "viewedAt" not in view
        and _ESCAPED.search(product_id) is None
        and (
            currency is None
            or (currency != "" and "|" not in currency and _ESCAPED.search(currency) is None)
        )
    ):
        del view["productId"]
        rest = orjson.dumps(view)[1:-1].decode()
        return [product_id, f"|{currency or ''}|{rest}", iso_ms(received)]
    if currency is not None:
        view["currencyCode"] = currency
    view["viewedAt"] = received
    return [product_id, orjson.dumps(view).decode()]


def _category_viewed(params: Params, received: str, raw: dict[str, Any]) -> tuple[str, Any]:
    category, field = require_object(params, "category", "productCategoryViewed")
    if "productCategoryId" not in category:
        raise invalid(
            f"{field}.productCategoryId",
            f"{field}.productCategoryId is required.",
            code="missing_field",
        )
    return "cv", text_id(category["productCategoryId"], f"{field}.productCategoryId")


def _cart_updated(params: Params, received: str, raw: dict[str, Any]) -> tuple[str, Any]:
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
    if math.isinf(total):  # finite prices and quantities, but too large a sum to store
        raise invalid(field, f"{field}: the cart's total is too large.")
    cart = {
        "recycleStateId": rsid,
        "products": cart_products,
        "currencyCode": currency_code(params),
        "total": round(total, 6),
        "updatedAt": received,
    }
    # its product ids: what the contact watches (ingest.lua watch)
    watched = [line["productId"] for line in cart_products]
    return "cart", [rsid, orjson.dumps(cart).decode(), not cart_products, watched]


# A handler adds to the stored event (`raw`) and returns its envelope part (arguments.PARTS), if
# any.
TypeHandler = Callable[[Params, str, dict[str, Any]], tuple[str, Any] | None]
TYPE_HANDLERS: dict[str, TypeHandler] = {
    "pageViewed": _page_viewed,
    "productViewed": _product_viewed,
    "productCategoryViewed": _category_viewed,
    "cartUpdated": _cart_updated,
}
