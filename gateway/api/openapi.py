"""The OpenAPI 3.0 description of the API, served at `/openapi.json` (docs/api.md).

Written by hand from the contract rather than derived from the routes: the hot path is plain ASGI
and several endpoints validate their bodies in code, so the description is the contract's own
account of each endpoint, its parameters and every status it may answer. The test suite runs
schemathesis against it, so a route that drifts from it fails there.

This module is over 300 lines because it is one table: the description of every endpoint, kept
together so that a reader (and a diff) sees the whole API at once.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import __version__
from gateway.api.debug import OUTCOMES
from gateway.api.tracker import CACHE_CONTROL
from gateway.http import DEFAULT_LIMIT, FEED_LIMIT, MAX_LIMIT, MAX_SCAN
from gateway.model.events import EVENT_TYPE, MAX_EVENT_ID
from gateway.model.params import MAX_PARAM_NAME, MAX_PARAMS, MAX_STRING
from gateway.redis.keys import STATS_MINUTES

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_ID = {
    "type": "string",
    "description": "with `internal_error` when Redis failed on this event or order: the id of "
    "the log entry that says why",
}
STRING = {"type": "string"}
INTEGER = {"type": "integer"}


def _header(description: str) -> dict[str, Any]:
    """A header every answer of its status carries (the tests check that it does)."""
    return {"schema": STRING, "description": description, "required": True}


RETRY_AFTER = {"Retry-After": _header("seconds")}
# Each error status once, under components/responses; operations refer to them by name.
ERRORS: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("BadRequest", "Invalid input; `field` names the culprit", {}),
    401: (
        "Unauthorized",
        "Missing or unknown API key",
        {"WWW-Authenticate": _header('Basic realm="gateway", Bearer')},
    ),
    403: ("Forbidden", "Key, origin or event type not allowed", {}),
    404: ("NotFound", "Not found", {}),
    405: (
        "MethodNotAllowed",
        "Any method a path does not document; Allow lists those it takes",
        {"Allow": _header("the methods of the path, e.g. `GET, HEAD`")},
    ),
    408: ("RequestTimeout", "The request was not received in time", {}),
    409: ("Conflict", "The request does not fit the configuration now", {}),
    413: (
        "PayloadTooLarge",
        "Body over max_body_bytes (also after gunzip) or batch over max_batch",
        {},
    ),
    415: ("UnsupportedMediaType", "Content-Type or Content-Encoding not supported", {}),
    429: ("RateLimited", "Over rate_limit_per_second for this key; see Retry-After", RETRY_AFTER),
    431: ("HeadersTooLarge", "The request head (URL and headers) is too large", {}),
    500: (
        "InternalError",
        "`internal_error`: a failure nobody foresaw (the log says why; `id`, when given, names "
        "its entry); a write may or may not be stored, so retry it with the same eventId",
        {},
    ),
    503: ("Unavailable", "Redis unavailable; nothing was stored; see Retry-After", RETRY_AFTER),
}
# What any request may be answered, whatever its path: the server's limits on the request itself,
# and a failure nobody foresaw.
ANY_ERRORS = (408, 431, 500)


def _responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, description, headers in ERRORS.values():
        response: dict[str, Any] = {
            "description": description,
            "content": {JSON: {"schema": ERROR_REF}},
        }
        if headers:
            response["headers"] = headers
        out[name] = response
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
        for status in sorted({*statuses, *ANY_ERRORS})
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}}


def _obj(*required: str, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _limit(default: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default},
    }


READ_ERRORS = (400, 401, 403, 404, 429, 503)
ERASURE = {"erasure": STRING, "status": {"type": "string", "enum": ["running", "done"]}}
INGEST_ERRORS = (400, 401, 403, 413, 415, 429, 503)

EVENT = {
    "type": "object",
    "required": ["eventTypeKey"],
    "properties": {
        "eventTypeKey": {"type": "string", "pattern": f"^{EVENT_TYPE.pattern}$"},
        "keyValue": {"type": "string", "maxLength": 256},
        "visitorId": {"type": "string", "maxLength": 256},
        "eventId": {"type": "string", "minLength": 1, "maxLength": MAX_EVENT_ID},
        "occurredAt": {"type": "string", "format": "date-time"},
        "params": {
            "description": "a list of {name, value} or an object {name: value}; string values "
            f"up to {MAX_STRING} characters, stringified JSON decoded to the second level",
            "oneOf": [
                {
                    "type": "array",
                    "maxItems": MAX_PARAMS,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": MAX_PARAM_NAME},
                            "value": {},
                        },
                    },
                },
                {"type": "object", "maxProperties": MAX_PARAMS},
            ],
        },
    },
}
ORDER = {
    "type": "object",
    "required": ["externalOrderId", "status", "totalCost", "date"],
    "properties": {
        "externalOrderId": STRING,
        "status": {
            "type": "string",
            "enum": [
                "INITIALIZED",
                "IN_PROGRESS",
                "DELIVERED",
                "CANCELLED",
                "ABANDONED_SHOPPING_CART",
            ],
        },
        "totalCost": {"type": "number", "minimum": 0},
        "date": STRING,
        "externalCustomerId": STRING,
        "email": STRING,
        "phone": STRING,
        "currency": STRING,
        "recycleStateId": STRING,
        "items": {"type": "array", "items": {"type": "object"}},
    },
}


def _ingest(summary: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    media = {"schema": body}
    return {
        "summary": summary,
        "security": [{"basic": []}, {"bearer": []}, {"siteKey": []}],
        "requestBody": {"required": True, "content": {JSON: media, "text/plain": media}},
        "responses": {
            **_ok(answer, "Stored in Redis before this answer"),
            **_errors(*INGEST_ERRORS),
        },
    }


def _read(summary: str, params: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"basic": []}, {"bearer": []}],
        "parameters": params,
        "responses": {**_ok(answer), **_errors(*READ_ERRORS)},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STRING}


def _query(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": STRING}


def _probe(summary: str, statuses: tuple[int, ...], media: str = JSON) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {media: {"schema": {}}}},
        **_errors(*statuses),
    }
    return {"get": {"summary": summary, "security": [], "responses": responses}}


def _preflight() -> dict[str, Any]:
    allowed = {
        "Access-Control-Allow-Origin": _header("the request's Origin"),
        "Access-Control-Allow-Methods": _header("GET, POST, OPTIONS"),
        "Access-Control-Allow-Headers": _header("authorization, content-type, content-encoding"),
        "Access-Control-Max-Age": _header("seconds the browser may keep this answer"),
        "Vary": _header("origin"),
    }
    return {
        "summary": "CORS preflight of a browser's request with a site key (no key needed)",
        "security": [],
        "parameters": [
            {"name": "Origin", "in": "header", "required": True, "schema": STRING},
            {"name": "Access-Control-Request-Method", "in": "header", "schema": STRING},
            {
                "name": "key",
                "in": "query",
                "schema": STRING,
                "description": "the site key the request will pass: its tenant's allowed_origins "
                "decide (without it, those of any tenant with site keys)",
            },
        ],
        "responses": {
            "204": {"description": "The origin is allowed", "headers": allowed},
            **_errors(403),
        },
    }


def build() -> dict[str, Any]:
    event_answer = _obj(
        "status",
        "eventId",
        status={"type": "string", "enum": ["accepted", "duplicate", "ignored"]},
        eventId=STRING,
        reason={
            "type": "string",
            "description": "with `ignored` only: why the order part of an order event changed "
            "nothing (the event itself is stored)",
        },
    )
    failed = _obj(
        "index",
        "error",
        "message",
        index=INTEGER,
        error=STRING,
        message=STRING,
        field=STRING,
        id=ERROR_ID,
    )
    ignored = _obj("index", "eventId", "reason", index=INTEGER, eventId=STRING, reason=STRING)
    events_answer = _obj(
        "accepted",
        "duplicates",
        "failed",
        accepted=INTEGER,
        duplicates=INTEGER,
        failed={"type": "array", "items": failed},
        ignored={
            "type": "array",
            "items": ignored,
            "description": "order events whose order part changed nothing (stored, not counted "
            "in `accepted`); present only when there are some",
        },
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gateway",
            "version": __version__,
            "description": "Recommendation-event tracking gateway (eSputnik/Yespo-compatible). "
            "Every error is JSON (components/schemas/Error). Any method a path does not list here "
            "is answered 405 with an Allow header (components/responses/MethodNotAllowed); a GET "
            "path answers HEAD too. Any request may be answered 408 (not received in time), 431 "
            "(its head too large) or 500 (internal_error).",
        },
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "password = key"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "siteKey": {"type": "apiKey", "in": "query", "name": "key"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": STRING,
                        "message": STRING,
                        "field": STRING,
                        "id": ERROR_ID,
                    },
                },
                "Event": EVENT,
                "Order": ORDER,
            },
            "responses": _responses(),
        },
        "paths": {
            "/v1/event": {
                "post": _ingest(
                    "Store one event", {"$ref": "#/components/schemas/Event"}, event_answer
                ),
                "options": _preflight(),
            },
            "/v1/events": {
                "post": _ingest(
                    "Store a batch of events",
                    {
                        "oneOf": [
                            {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                            _obj(
                                events={
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Event"},
                                }
                            ),
                        ]
                    },
                    events_answer,
                ),
                "get": _read(
                    "Newest events of the tenant or of one contact (with `type`, among the "
                    f"newest {MAX_SCAN} older than `before`; `next` goes on, null at the end)",
                    [_query("contact"), _query("type"), _query("before"), _limit(DEFAULT_LIMIT)],
                    _obj(
                        "events",
                        "next",
                        events={"type": "array", "items": {"type": "object"}},
                        next={"type": "string", "nullable": True},
                    ),
                ),
                "options": _preflight(),
            },
            "/v1/contacts/{identifier}": {
                "get": _read(
                    "A contact by any identifier", [_path_param("identifier")], {"type": "object"}
                ),
                "delete": {
                    **_read(
                        "Erase a contact, and with suppress=true ignore its identifiers from now "
                        "on (docs/privacy.md)",
                        [_path_param("identifier"), _query("suppress")],
                        {},
                    ),
                    "responses": {
                        "202": {
                            "description": "Erased; its streams are being erased",
                            "content": {JSON: {"schema": _obj("erasure", "status", **ERASURE)}},
                        },
                        **_errors(*READ_ERRORS),
                    },
                },
            },
            "/v1/contacts/{identifier}/orders": {
                "get": _read(
                    "A contact's orders, newest first",
                    [_path_param("identifier")],
                    _obj("orders", orders={"type": "array", "items": {"type": "object"}}),
                )
            },
            "/v1/contacts/{identifier}/export": {
                "get": _read(
                    "Everything held about a contact",
                    [_path_param("identifier")],
                    {"type": "object"},
                )
            },
            "/v1/erasures/{erasure}": {
                "get": _read(
                    "An erasure's status and counts",
                    [_path_param("erasure")],
                    _obj("erasure", "status", "counts", counts={"type": "object"}, **ERASURE),
                )
            },
            "/v1/suppressions/{identifier}": {
                "delete": _read(
                    "Lift the suppression of an identifier",
                    [_path_param("identifier")],
                    _obj("lifted", lifted={"type": "array", "items": STRING}),
                )
            },
            "/v1/orders": {
                "post": {
                    **_ingest(
                        "Create or update orders",
                        _obj(
                            orders={
                                "type": "array",
                                "maxItems": 1000,
                                "items": {"$ref": "#/components/schemas/Order"},
                            }
                        ),
                        _obj("failedOrders", failedOrders={"type": "array"}),
                    ),
                    "security": [{"basic": []}, {"bearer": []}],
                }
            },
            "/v1/products": {
                "post": {
                    **_ingest(
                        "Store products of the catalog (priceDrop, backInStock)",
                        _obj(
                            "products",
                            products={
                                "type": "array",
                                "maxItems": 1000,
                                "items": {"type": "object"},
                            },
                        ),
                        _obj("updated", "failed", updated=INTEGER, failed={"type": "array"}),
                    ),
                    "security": [{"basic": []}, {"bearer": []}],
                }
            },
            "/v1/products/{productId}": {
                "get": _read(
                    "A product as the catalog has it",
                    [_path_param("productId")],
                    {"type": "object"},
                )
            },
            "/v1/orders/{externalOrderId}": {
                "get": _read(
                    "An order and its status history",
                    [_path_param("externalOrderId")],
                    {"type": "object"},
                )
            },
            "/v1/carts/{recycleStateId}": {
                "get": _read(
                    "A cart state and its order once converted",
                    [_path_param("recycleStateId")],
                    {"type": "object"},
                )
            },
            "/v1/triggers": {
                "get": _read(
                    "Trigger events after a cursor (oldest first) or before one (newest first; "
                    "an empty before: from the newest), each with its deliveries: per webhook its "
                    "type is routed to, notSent, queued, retrying, dead or delivered",
                    [_query("after"), _query("before"), _query("type"), _limit(FEED_LIMIT)],
                    _obj(
                        "triggers",
                        "next",
                        triggers={"type": "array", "items": {"type": "object"}},
                        next={"type": "string", "nullable": True},
                    ),
                )
            },
            "/v1/webhooks": {
                "get": {
                    key: value
                    for key, value in _read(
                        "The webhooks (URLs redacted): types, deliveries scheduled and dead",
                        [],
                        _obj("webhooks", webhooks={"type": "array", "items": {"type": "object"}}),
                    ).items()
                    if key != "parameters"  # it takes none
                }
            },
            "/v1/triggers/stats": {
                "get": _read(
                    "Per trigger type: emitted, suppressed, delivered, failed, converted, revenue",
                    [_query("from"), _query("to")],
                    _obj("from", "to", "types", types={"type": "object"}),
                )
            },
            "/v1/webhooks/dead": {
                "get": _read(
                    "Webhook deliveries that gave up, newest first",
                    [_limit(FEED_LIMIT)],
                    _obj("dead", dead={"type": "array", "items": {"type": "object"}}),
                )
            },
            "/v1/destinations/dead": {
                "get": _read(
                    "Events and orders a destination refused or that used up their retries",
                    [_query("before"), _limit(FEED_LIMIT)],
                    _obj(
                        "dead",
                        "next",
                        dead={"type": "array", "items": {"type": "object"}},
                        next={"type": "string", "nullable": True},
                    ),
                )
            },
            "/v1/destinations/dead/{id}/retry": {
                "post": {
                    "summary": "Queue a dead letter for its destination again",
                    "security": [{"basic": []}, {"bearer": []}],
                    "parameters": [_path_param("id")],
                    "responses": {
                        "202": {
                            "description": "Queued",
                            "content": {JSON: {"schema": _obj("id", "status")}},
                        },
                        **_errors(401, 403, 404, 409, 429, 503),
                    },
                }
            },
            "/v1/debug/events": {
                "get": _read(
                    "Accepted events and refused ingest requests merged, newest first",
                    [
                        _query("after"),
                        {"name": "outcome", "in": "query", "schema": {"enum": list(OUTCOMES)}},
                        {"name": "status", "in": "query", "schema": {"enum": list(OUTCOMES)}},
                        _limit(DEFAULT_LIMIT),
                    ],
                    _obj(
                        "items",
                        "next",
                        items={"type": "array", "items": {"type": "object"}},
                        next={"type": "string", "nullable": True},
                    ),
                )
            },
            "/v1/stats/events": {
                "get": _read(
                    "Accepted events by type and refusals by error code, per minute",
                    [
                        {
                            "name": "minutes",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": STATS_MINUTES},
                        }
                    ],
                    _obj("minutes", minutes={"type": "array", "items": {"type": "object"}}),
                )
            },
            "/js/tracker.js": {
                "get": {
                    "summary": "The browser tracker (the JS snippet); any origin may load it",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The script, gzipped when Accept-Encoding allows",
                            "headers": {
                                "ETag": _header("its digest"),
                                "Cache-Control": _header(CACHE_CONTROL),
                            },
                            "content": {"text/javascript": {"schema": STRING}},
                        },
                        "304": {
                            "description": "The request's If-None-Match named the current ETag",
                            "headers": {"ETag": _header("its digest")},
                        },
                        **_errors(),
                    },
                }
            },
            "/healthz": _probe("200 while the process runs", ()),
            "/readyz": _probe("200 while Redis answers, else 503", (503,)),
            "/metrics": _probe(
                "Prometheus text (401 without the metrics_token, when one is set)",
                (401,),
                "text/plain",
            ),
            "/openapi.json": _probe("This description", ()),
        },
    }


DOCUMENT = orjson.dumps(build())


async def endpoint(request: Request) -> Response:
    return Response(DOCUMENT, media_type=JSON)


routes = [Route("/openapi.json", endpoint)]
