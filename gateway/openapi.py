"""The OpenAPI 3.0 description of the API, served at `/openapi.json` (SPEC §4-§9).

Written by hand from the contract rather than derived from the routes: the hot path is plain ASGI
and several endpoints validate their bodies in code, so the description is the contract's own
account of each endpoint, its parameters and every status it may answer. The test suite runs
schemathesis against it, so a route that drifts from it fails there.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import __version__
from .contacts import MAX_LIMIT
from .events import MAX_EVENT_ID
from .params import MAX_PARAM_NAME, MAX_PARAMS, MAX_STRING

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
STATUS_TEXT = {
    400: "Invalid input; `field` names the culprit",
    401: "Missing or unknown API key",
    403: "Key, origin or event type not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Body over max_body_bytes (also after gunzip) or batch over max_batch",
    415: "Content-Type or Content-Encoding not supported",
    429: "Over rate_limit_per_second for this key; see Retry-After",
    503: "Redis unavailable; nothing was stored; see Retry-After",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}


def _errors(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": STATUS_TEXT[status],
            "content": {JSON: {"schema": ERROR_REF}},
        }
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        out[str(status)] = response
    return out


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}}


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


STRING = {"type": "string"}
LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
}
READ_ERRORS = (400, 401, 403, 404, 503)
INGEST_ERRORS = (400, 401, 403, 413, 415, 429, 503)

EVENT = {
    "type": "object",
    "required": ["eventTypeKey"],
    "properties": {
        "eventTypeKey": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}$"},
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
    }
    if 503 in statuses:
        responses.update(_errors(503))
    return {"get": {"summary": summary, "security": [], "responses": responses}}


def build() -> dict[str, Any]:
    events_answer = _obj(
        accepted={"type": "integer"}, duplicates={"type": "integer"}, failed={"type": "array"}
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gateway",
            "version": __version__,
            "description": "Recommendation-event tracking gateway (eSputnik/Yespo-compatible).",
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
                    "properties": {"error": STRING, "message": STRING, "field": STRING},
                },
                "Event": EVENT,
                "Order": ORDER,
            },
        },
        "paths": {
            "/v1/event": {
                "post": _ingest(
                    "Store one event",
                    {"$ref": "#/components/schemas/Event"},
                    _obj(
                        status={"type": "string", "enum": ["accepted", "duplicate"]}, eventId=STRING
                    ),
                )
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
                    "Newest events of the tenant or of one contact",
                    [_query("contact"), _query("type"), LIMIT],
                    _obj(events={"type": "array", "items": {"type": "object"}}),
                ),
            },
            "/v1/contacts/{identifier}": {
                "get": _read(
                    "A contact by any identifier", [_path_param("identifier")], {"type": "object"}
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
                        _obj(failedOrders={"type": "array"}),
                    ),
                    "security": [{"basic": []}, {"bearer": []}],
                }
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
                    "Trigger events after a cursor",
                    [_query("after"), _query("type"), LIMIT],
                    _obj(triggers={"type": "array"}, next={"type": "string", "nullable": True}),
                )
            },
            "/v1/webhooks/dead": {
                "get": _read("Webhook deliveries that gave up", [LIMIT], {"type": "object"})
            },
            "/healthz": _probe("200 while the process runs", ()),
            "/readyz": _probe("200 while Redis answers, else 503", (503,)),
            "/metrics": _probe("Prometheus text", (), "text/plain"),
            "/openapi.json": _probe("This description", ()),
        },
    }


DOCUMENT = orjson.dumps(build())


async def endpoint(request: Request) -> Response:
    return Response(DOCUMENT, media_type=JSON)
