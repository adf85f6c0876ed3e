"""Order events (seed 001): orderCreated, orderUpdated, orderDelivered, orderCancelled.

The event itself is stored like any other; its order part rides along in the ingest envelope
(`order`, applied by the same Lua `apply_order` as `POST /v1/orders`) or, when a required param is
missing, as `ig` (the reason the order part is ignored, echoed back by the script).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import invalid
from gateway.model import orders
from gateway.redis.constants import KIND_ORDER, ORDER_IDENTIFIERS

# Order fields by their lower-cased param name: params are matched without regard to case.
CANONICAL = {
    name.lower(): name
    for name in (
        *orders.REQUIRED,
        *orders.CONTACT_FIELDS,
        *orders.NUMBERS,
        "currency",
        "items",
        "recycleStateId",
        "deliveryMethod",
        "paymentMethod",
        "deliveryAddress",
        "firstName",
        "lastName",
    )
}
STATUS_EVENTS = {"orderDelivered": "DELIVERED", "orderCancelled": "CANCELLED"}
CONTACT_KINDS = frozenset(ORDER_IDENTIFIERS.values())
_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}


def prepare(
    event_type: str,
    by_lower: dict[str, Any],
    names: dict[str, str],
    idents: list[str],
    received: str,
) -> tuple[tuple[str, Any], list[str]]:
    """(the envelope's part, `order` or `ig`; the identifiers with the order's externalCustomerId).

    A malformed value is the caller's 400, naming the param as sent.
    """
    raw = {CANONICAL.get(lower, names[lower]): value for lower, value in by_lower.items()}
    checked = orders.check(raw)
    if checked.errors:
        name, message = checked.errors[0]
        param = f"params.{names.get(name.lower(), name)}"
        raise invalid(param, message.replace(name, param, 1))
    customer = checked.value("externalCustomerId")
    if customer is not None and f"customer:{customer}" not in idents:
        idents = sorted([*idents, f"customer:{customer}"], key=lambda i: _RANK[i.split(":")[0]])
    order_id = checked.value("externalOrderId")
    if order_id is None:
        return ("ig", f"{event_type} needs the param externalOrderId."), idents
    if event_type in STATUS_EVENTS:
        status_only = orders.Checked(
            fields={"externalOrderId": order_id, "status": STATUS_EVENTS[event_type]}
        )
        return ("order", orders.envelope(status_only, "status", event_type, received)), idents
    missing = list(checked.missing)
    if not any(ident.split(":")[0] in CONTACT_KINDS for ident in idents):
        missing.append("externalCustomerId, email or phone")
    reason = f"{event_type} needs the params {', '.join(missing)}." if missing else None
    if event_type == "orderCreated":
        if reason is not None:
            return ("ig", reason), idents
        return ("order", orders.envelope(checked, "put", event_type, received)), idents
    update = orders.envelope(checked, "update", event_type, received)
    if reason is not None:
        update["miss"] = f"The order does not exist and {reason}"  # only used if it is new
    return ("order", update), idents
