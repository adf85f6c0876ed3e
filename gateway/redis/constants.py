"""Values Python and the Lua scripts both use, written once: scripts.py writes them into the
scripts (`{{NAME}}`), so no script repeats one by hand."""

from __future__ import annotations

# Identifier kinds, in the order they decide which contact an event belongs to.
KIND_ORDER = (
    "contactId",
    "email",
    "phone",
    "pushToken",
    "contactKey",
    "customer",
    "key",
    "visitor",
)
# Kinds that let a trigger reach a person (docs/triggers.md); the others are anonymous. The shop's
# own customer id (externalCustomerId) reaches the person through the shop's CRM.
REACHABLE_KINDS = frozenset({"contactId", "email", "phone", "pushToken", "contactKey", "customer"})
# kind -> the name a reader sees in `identifiers` (contacts, triggers)
PUBLIC_NAMES = {
    "contactId": "contactId",
    "email": "email",
    "phone": "phone",
    "pushToken": "pushToken",
    "contactKey": "contactKey",
    "customer": "externalCustomerId",
    "key": "keyValue",
    "visitor": "visitorId",
}
# The order fields that name its contact -> their identifier kinds, in KIND_ORDER order.
ORDER_IDENTIFIERS = {"email": "email", "phone": "phone", "externalCustomerId": "customer"}
# The reason given for an event or order ignored because it names a suppressed identifier.
SUPPRESSED = "suppressed"
# The order fields an erasure removes (docs/privacy.md); totals, items and dates stay.
ORDER_PERSONAL_FIELDS = (
    *ORDER_IDENTIFIERS,
    "firstName",
    "lastName",
    "middleName",
    "deliveryAddress",
    "billingAddress",
    "address",
)

# Short codes of the common event types: a visit counts its events under them (VISIT_FIELDS,
# read when it closes). A contact's :ev list (keys.py) stores an event of these
# types as an integer led by its LIST_DIGITS digit, or, where that form does not fit, as
# "<code>|<stream id>" with its LIST_CODES code, whose "*" keeps it apart from every eventTypeKey
# (events.EVENT_TYPE); other types are stored in full, "<eventTypeKey>|<stream id>".
EVENT_CODES = {
    "pageViewed": "pg",
    "productViewed": "pv",
    "productCategoryViewed": "cv",
    "cartUpdated": "cu",
}
LIST_CODES = {event_type: "*" + code for event_type, code in EVENT_CODES.items()}
LIST_DIGITS = {event_type: str(n) for n, event_type in enumerate(EVENT_CODES, start=1)}
EVENT_TYPES = {code: event_type for event_type, code in (*LIST_CODES.items(), *LIST_DIGITS.items())}
# A contact's identifiers, kept in its hash (keys.py): a field "i:<kind>:<value>" each, the ms it
# was first seen.
IDENTIFIER_FIELD = "i:"
# A contact's open visit, kept in its hash (keys.py): its first and last event (ms), its events,
# and their counts by EVENT_CODES code, "x" for any other type and "o" for the orders it saw.
VISIT_FIELD = "v:"
VISIT_FIELDS = tuple(
    VISIT_FIELD + name for name in ("start", "last", "n", *EVENT_CODES.values(), "x", "o")
)

# The triggers a closed visit can emit (docs/triggers.md), in the order lib.lua tries them.
VISIT_TRIGGERS = ("abandonedCart", "abandonedBrowse", "abandonedCategory", "abandonedVisit")
# The triggers a product's fan-out emits to its watchers (lua/fanout.lua; keys.py WATCH_TOLD).
PRODUCT_TRIGGERS = ("priceDrop", "backInStock")
# Fields of P:tally, which lib.lua counts into and detect.lua drains for /metrics: visits closed,
# those of anonymous contacts, and "<TALLY_TRIGGER><type>" per trigger type emitted.
TALLY_CLOSED, TALLY_ANONYMOUS, TALLY_TRIGGER = "closed", "anonymous", "trigger:"
# ... and "<TALLY_SUPPRESSED><type>|<reason>" per trigger suppressed (docs/triggers.md, Trigger
# policies), "<TALLY_CONVERTED><type>" per order attributed to a trigger of that type, and
# "<TALLY_REVENUE><type>|<currency>" its revenue.
TALLY_SUPPRESSED, TALLY_CONVERTED, TALLY_REVENUE = "suppressed:", "converted:", "revenue:"
# The trigger telling that an order was attributed to a trigger (docs/triggers.md, Attribution).
TRIGGER_CONVERTED = "triggerConverted"
# Why a trigger was not emitted, in the order they are checked.
SUPPRESSION_REASONS = ("ordered", "converted", "returned", "cooldown", "recentOrder")

# Errors with which a script fails its whole call, as before, where any other error in an
# event's (or an order's) writes fails that one alone (lib_errors.lua `failed`): Redis refusing
# writes for now (memory full, a failing disk, a replica, too few replicas, a restart) or the call
# sent to the wrong node (Redis Cluster). They concern the call, not an event: the client answers
# them as a whole (OOM and MISCONF a 503 to retry, store.py is_unavailable), not event by event.
# Matched as the error's code: its text starts with it, or has it after a "-" (Redis 6 puts the
# place of the failing call first, e.g. "=[C]: -1: -OOM command not allowed...").
WHOLE_CALL_ERRORS = (
    "OOM ",
    "MISCONF ",
    "READONLY ",
    "NOREPLICAS ",
    "LOADING ",
    "MOVED ",
    "ASK ",
    "TRYAGAIN ",
    "CLUSTERDOWN ",
)
