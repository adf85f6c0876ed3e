"""Bad input: a clear 4xx naming the field, never a 500, and nothing stored.

The contract: docs/api.md, Errors.
"""

from __future__ import annotations

import gzip
from typing import Any

import pytest

# In-process and through the real server with its protocol shortcut for the ingest paths.
pytestmark = pytest.mark.both_transports

PRODUCT = '{"productId":"P1","price":1}'


def ev(event_type: str = "productViewed", **params: Any) -> dict[str, Any]:
    return {
        "eventTypeKey": event_type,
        "keyValue": "ann@example.com",
        "params": [{"name": k, "value": v} for k, v in params.items()],
    }


BAD_EVENTS = [
    ([1, 2], 400, "invalid_field", "body"),
    ({"keyValue": "a@b.c"}, 400, "missing_field", "eventTypeKey"),
    ({"eventTypeKey": "has space", "keyValue": "a@b.c"}, 400, "invalid_field", "eventTypeKey"),
    ({"eventTypeKey": "x" * 101, "keyValue": "a@b.c"}, 400, "invalid_field", "eventTypeKey"),
    ({"eventTypeKey": "pageViewed"}, 400, "missing_identifier", "keyValue"),
    ({"eventTypeKey": "c", "keyValue": ["a"]}, 400, "invalid_field", "keyValue"),
    ({"eventTypeKey": "c", "visitorId": 5}, 400, "invalid_field", "visitorId"),
    ({"eventTypeKey": "c", "keyValue": "a@b.c", "eventId": ""}, 400, "invalid_field", "eventId"),
    (
        {"eventTypeKey": "c", "keyValue": "a@b.c", "eventId": "e" * 129},
        400,
        "invalid_field",
        "eventId",
    ),
    (
        {"eventTypeKey": "c", "keyValue": "a@b.c", "occurredAt": "yesterday"},
        400,
        "invalid_field",
        "occurredAt",
    ),
    ({"eventTypeKey": "c", "keyValue": "a@b.c", "params": "x"}, 400, "invalid_field", "params"),
    (
        {"eventTypeKey": "c", "keyValue": "a@b.c", "params": [{"value": 1}]},
        400,
        "invalid_field",
        "params[0]",
    ),
    (
        {"eventTypeKey": "c", "keyValue": "a@b.c", "params": [{"name": "", "value": 1}]},
        400,
        "invalid_field",
        "params[0].name",
    ),
    (ev(product=PRODUCT, Product=PRODUCT), 400, "duplicate_param", "params.Product"),
    (ev(product="{not json"), 400, "invalid_json", "params.product"),
    (ev(product='{"productId": "P1"} trailing words'), 400, "invalid_json", "params.product"),
    (ev(), 400, "missing_field", "params.product"),
    (ev(product='["P1"]'), 400, "invalid_field", "params.product"),
    (ev(product='{"price": 3}'), 400, "missing_field", "params.product.productId"),
    # a lone surrogate inside a value that needs the seed's `]}` repair (was a 500)
    (ev(product='{"productId": "P1", "note": "\\ud800"}]}'), 400, "invalid_json", "params.product"),
    (
        ev(product='{"productId": "P1", "price": "cheap"}'),
        400,
        "invalid_field",
        "params.product.price",
    ),
    (
        ev(product='{"productId": "P1", "isInStock": 2}'),
        400,
        "invalid_field",
        "params.product.isInStock",
    ),
    (ev(phone="+38 050 123", product=PRODUCT), 400, "invalid_phone", "params.phone"),
    (ev(SMS="call-me", product=PRODUCT), 400, "invalid_phone", "params.SMS"),
    # a line break after the digits (a regular expression's `$` lets one through)
    (ev(phone="411786452\n", product=PRODUCT), 400, "invalid_phone", "params.phone"),
    (ev("pageViewed", page='{"url": "https://a"}'), 400, "missing_field", "params.page.location"),
    (
        ev("pageViewed", page='{"location": "/relative/path"}'),
        400,
        "invalid_field",
        "params.page.location",
    ),
    (
        ev("productCategoryViewed", category="{}"),
        400,
        "missing_field",
        "params.category.productCategoryId",
    ),
    (ev("cartUpdated", products="[]"), 400, "missing_field", "params.recycleStateId"),
    (
        ev("cartUpdated", recycleStateId="r", products='{"productId": 1}'),
        400,
        "invalid_field",
        "params.products",
    ),
    (
        ev("cartUpdated", recycleStateId="r", products='[{"productId": "A", "price": 1}]'),
        400,
        "missing_field",
        "params.products[0].quantity",
    ),
    (
        ev(
            "cartUpdated",
            recycleStateId="r",
            products='[{"productId":"A","price":-1,"quantity":1}]',
        ),
        400,
        "invalid_field",
        "params.products[0].price",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_EVENTS)
async def test_bad_events_name_the_field_and_store_nothing(
    api, sync_redis, body, status, code, field
):
    response = await api.event(body)
    assert response.status_code == status, response.text
    error = response.json()
    assert (error["error"], error["field"]) == (code, field)
    assert (
        field.split("[")[0].split(".")[-1].lower() in error["message"].lower()
        or field in error["message"]
    )
    assert sync_redis.xlen(api.keys.events) == 0
    assert not sync_redis.exists(api.keys.identifier("email", "ann@example.com"))


async def test_malformed_json_and_content_types(api):
    cases = [
        (b"{not json", {"content-type": "application/json"}, 400, "invalid_json"),
        (b'{"eventTypeKey": NaN}', {"content-type": "application/json"}, 400, "invalid_json"),
        (
            b"{}",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        (
            b"{}",
            {"content-type": "application/json", "content-encoding": "br"},
            415,
            "unsupported_encoding",
        ),
        (
            b"not gzip",
            {"content-type": "application/json", "content-encoding": "gzip"},
            400,
            "invalid_gzip",
        ),
        (gzip.compress(b"{}")[:-6], {"content-encoding": "gzip"}, 400, "invalid_gzip"),
    ]
    for body, headers, status, code in cases:
        response = await api.http.post(
            "/v1/event", content=body, headers={**api.server(), **headers}
        )
        assert (response.status_code, response.json()["error"]) == (status, code), body


async def test_oversize_bodies_and_batches(make_api, sync_redis):
    api, _ = await make_api(gateway={"max_body_bytes": 2048, "max_batch": 3})
    big = ev("custom", note="x" * 3000)
    assert (await api.event(big)).status_code == 413
    # a gzip bomb: 50 KB of zeros compresses to almost nothing but is refused by its real size
    bomb = gzip.compress(b'{"eventTypeKey":"c","keyValue":"a@b.c","p":"' + b"0" * 50_000 + b'"}')
    assert len(bomb) < 2048
    response = await api.http.post(
        "/v1/event", content=bomb, headers={**api.server(), "content-encoding": "gzip"}
    )
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    small = ev("pageViewed", page='{"location":"https://a"}')
    response = await api.events([small] * 4)
    assert (response.status_code, response.json()["field"]) == (413, "events")
    assert sync_redis.xlen(api.keys.events) == 0


async def test_wrong_method_on_ingest(api):
    """405s name the methods that work, in the message and in Allow (RFC 9110 requires it)."""
    for method, path, allowed in (
        ("GET", "/v1/event", "POST, OPTIONS"),
        ("DELETE", "/v1/events", "GET, HEAD, POST, OPTIONS"),  # said "accepts POST" only
        ("PUT", "/v1/orders", "POST"),
        ("HEAD", "/v1/event", "POST, OPTIONS"),
    ):
        response = await api.http.request(method, path, headers=api.server())
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed
        assert method == "HEAD" or allowed in response.json()["message"] or path == "/v1/orders"


async def test_head_answers_like_get_on_every_read(api):
    """HEAD /v1/events went to the ingest app, which answered 405, unlike every other GET."""
    await api.event({"eventTypeKey": "custom", "keyValue": "head@example.com"})
    for path in (
        "/v1/events",
        "/v1/events?contact=head@example.com",
        "/v1/contacts/head@example.com",
        "/v1/triggers",
    ):
        get, head = await api.get(path), await api.http.head(path, headers=api.server())
        assert (head.status_code, head.content) == (get.status_code, b""), path
        assert head.headers["content-type"] == get.headers["content-type"]


async def test_redis_down_answers_503_with_retry_after(no_redis):
    http, auth = no_redis
    response = await http.post("/v1/event", headers=auth, json=ev(product=PRODUCT))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "redis_unavailable"
    batch = await http.post("/v1/events", headers=auth, json=[ev(product=PRODUCT)])
    assert batch.status_code == 503
    assert (await http.get("/readyz")).status_code == 503
    assert (await http.get("/healthz")).status_code == 200
    for read in ("/v1/contacts/ann@example.com", "/v1/triggers", "/v1/webhooks/dead"):
        refused = await http.get(read, headers=auth)
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "1"), read
    assert "gateway_redis_unavailable_total 2.0" in (await http.get("/metrics")).text


async def test_curl_without_content_type_is_told_how_to_fix_it(api):
    response = await api.http.post(
        "/v1/event",
        content=b'{"eventTypeKey": "c", "keyValue": "a@b.c"}',
        headers={**api.server(), "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "add -H 'Content-Type: application/json'" in response.json()["message"]


async def test_request_latency_covers_every_route_by_its_template(api):
    """Only the ingest paths were measured: reads, orders and 404s never showed."""
    await api.http.get("/v1/contacts/nobody@example.com", headers=api.server())
    await api.http.get("/v1/carts/rs-none", headers=api.server())
    await api.http.get("/healthz")
    await api.http.get("/no/such/path")
    metrics = (await api.http.get("/metrics")).text
    for route in ("/v1/contacts/{identifier}", "/v1/carts/{recycleStateId}", "/healthz", "other"):
        assert f'gateway_request_duration_seconds_count{{route="{route}"}}' in metrics, route
    assert "nobody@example.com" not in metrics


async def test_a_page_location_too_long_says_so(api):
    """It said "must be an absolute URL or deeplink", which it was (a long query string)."""
    location = "https://a.example/?q=" + "x" * 4090
    response = await api.event(ev("pageViewed", page=f'{{"location": "{location}"}}'))
    assert response.status_code == 400
    error = response.json()
    assert error["field"] == "params.page.location"
    assert error["message"] == "params.page.location is longer than 4096 characters."


@pytest.mark.parametrize("limit", [1024])
async def test_body_limit_applies_to_every_ingest_path(make_api, limit):
    a, _ = await make_api(gateway={"max_body_bytes": limit, "max_batch": 3})
    big = {"eventTypeKey": "c", "keyValue": "big@x.io", "params": {"note": "x" * limit}}
    assert (await a.event(big)).status_code == 413
    assert (await a.events([big])).status_code == 413
    small = {"eventTypeKey": "c", "keyValue": "s@x.io"}
    response = await a.events([small] * 4)
    assert (response.status_code, response.json()["error"]) == (413, "batch_too_large")
