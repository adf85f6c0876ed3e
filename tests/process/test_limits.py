"""Every input limit one by one, against a real gateway process (docs/operations.md, Input limits).

Most against a gateway with small limits whose stored data is snapshotted around each refusal;
the default 1 MiB body limit against a gateway of its own.
"""

from __future__ import annotations

import gzip
import signal
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.model.decoding import MAX_DEPTH
from tests.support.faults import SMALL_LIMIT, Target, small_gateway
from tests.support.gateways import free_port, start_gateway, unique, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with small_gateway(tmp_path_factory.mktemp("limits")) as running:
        yield running


# ---- the limits, one by one --------------------------------------------------------------


def send(target: Target, body: bytes, **headers: str) -> httpx.Response:
    auth = {"authorization": f"Bearer sk_{target.tenant}", "content-type": "application/json"}
    return target.http.post("/v1/event", content=body, headers={**auth, **headers})


def test_gzip_bomb_is_refused_by_decompressed_size(target: Target) -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]", 9)  # 50 MB of JSON in ~50 KB
    assert len(bomb) > SMALL_LIMIT  # too big even compressed: refused before inflating
    small_bomb = gzip.compress(b" " * 10_000_000, 9)[:SMALL_LIMIT]
    before = target.snapshot()
    for body in (bomb, small_bomb):
        response = send(target, body, **{"content-encoding": "gzip"})
        assert response.status_code == 413, response.text
    # a bomb that fits the wire limit compressed but not decompressed
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    fitting = deflater.compress(b" " * 3_000_000) + deflater.flush()
    assert len(fitting) < SMALL_LIMIT
    response = send(target, fitting, **{"content-encoding": "gzip"})
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    print(f"\ngzip bomb {len(fitting)} bytes -> 3000000 bytes: refused 413")
    assert target.snapshot() == before


def test_chunked_body_over_the_limit_is_413(target: Target) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1000

    auth = {"authorization": f"Bearer sk_{target.tenant}"}
    streamed = target.http.post("/v1/event", content=chunks(), headers=auth)
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1500 + b"]" * 1500,
        b'{"eventTypeKey":"c","keyValue":"h@example.com","params":{"x":'
        + b"[" * 2000
        + b"]" * 2000
        + b"}}",
        b'{"eventTypeKey":"c","keyValue":"h@example.com","params":{"x":1e400}}',
        b'{"eventTypeKey":"c","keyValue":"h@example.com","params":{"x":-1e999}}',
    ],
    ids=["deep-body", "deep-param", "huge-float", "huge-negative"],
)
def test_deep_nesting_and_huge_numbers_are_400(target: Target, body: bytes) -> None:
    response = send(target, body)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    "value",
    [
        "[" * 1500 + "]" * 1500,
        "[1" + "0" * 400 + "]]",  # repaired path, beyond a float's range
        "[" + "9" * 4000 + "]]",
        "[1e400]",
        "[NaN]]",
    ],
    ids=["deep", "huge-int-repair", "4000-digits", "inf", "nan-repair"],
)
def test_stringified_params_with_hostile_numbers_are_400(target: Target, value: str) -> None:
    event = {
        "eventTypeKey": "c",
        "keyValue": "h@example.com",
        "params": [{"name": "x", "value": value}],
    }
    response = send(target, orjson.dumps(event))
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "params.x"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"eventTypeKey": "c", "keyValue": "k" * 257}, "keyValue"),
        ({"eventTypeKey": "c", "visitorId": "v" * 257}, "visitorId"),
        ({"eventTypeKey": "c", "keyValue": "a@b.c", "eventId": "e" * 129}, "eventId"),
        ({"eventTypeKey": "c" * 101, "keyValue": "a@b.c"}, "eventTypeKey"),
        ({"eventTypeKey": "c\n", "keyValue": "a@b.c"}, "eventTypeKey"),
        (
            {"eventTypeKey": "c", "keyValue": "a@b.c", "params": {"n" * 101: 1}},
            "params." + "n" * 101,
        ),
        (
            {"eventTypeKey": "c", "keyValue": "a@b.c", "params": {f"p{i}": 1 for i in range(201)}},
            "params",
        ),
    ],
    ids=[
        "keyValue",
        "visitorId",
        "eventId",
        "eventTypeKey",
        "eventTypeKey-line-break",
        "param-name",
        "param-count",
    ],
)
def test_strings_and_counts_are_limited(target: Target, event: dict[str, Any], field: str) -> None:
    body = orjson.dumps(event)
    assert len(body) < SMALL_LIMIT  # under the body limit: a 413 would be a wrong answer
    response = send(target, body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_long_strings_are_400_under_default_limit(tmp_path: Path, redis_url: str) -> None:
    """Needs the default 1 MiB body limit, so its own gateway: a 64 KiB + 1 param string, and a
    5000-digit number (over Python's 4300-digit int conversion limit, once a 500)."""
    tenant = unique("long")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config))
    try:
        for value in ("x" * 65_537, "[" + "9" * 5000 + "]]"):
            event = {"eventTypeKey": "c", "keyValue": "a@b.c", "params": {"note": value}}
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/event",
                json=event,
                headers={"authorization": f"Bearer sk_{tenant}"},
            )
            assert (response.status_code, response.json()["field"]) == (400, "params.note")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


def nested(depth: int) -> str:
    """JSON text of `depth` nested arrays (deeper than orjson itself writes)."""
    return "[" * depth + "1" + "]" * depth


def with_params(params: str, who: str = "deep@x.io") -> bytes:
    return f'{{"eventTypeKey":"c","keyValue":"{who}","params":{params}}}'.encode()


def server(target: Target) -> dict[str, str]:
    return {"authorization": f"Bearer sk_{target.tenant}", "content-type": "application/json"}


def test_nesting_up_to_the_limit_is_stored_and_read_back_and_deeper_is_400(
    target: Target,
) -> None:
    """Once a 500 from 253 levels on (orjson reads 1024 but writes 254), losing a whole batch."""
    deepest = nested(MAX_DEPTH)
    assert send(target, with_params(f'{{"x":{deepest}}}')).status_code == 200
    read = target.http.get("/v1/events?contact=deep@x.io", headers=server(target))
    assert read.json()["events"][0]["params"]["x"] == orjson.loads(deepest)
    as_text = orjson.dumps(deepest).decode()  # kept as text from the third level on
    assert send(target, with_params(f'[{{"name":"s","value":{as_text}}}]')).status_code == 200
    before = target.snapshot()
    for depth in (MAX_DEPTH + 1, 300):
        value, as_text = nested(depth), orjson.dumps(nested(depth)).decode()
        for params in (
            f'{{"x":{value}}}',
            f'[{{"name":"x","value":{value}}}]',
            f'[{{"name":"x","value":{as_text}}}]',
        ):
            response = send(target, with_params(params))
            assert response.status_code == 400, response.text
            error = response.json()
            assert (error["error"], error["field"]) == ("invalid_json", "params.x")
    assert target.snapshot() == before
    good = with_params("{}", "batch@x.io")
    deep = with_params(f'{{"x":{nested(300)}}}', "batch@x.io")
    batch = b"[" + good + b"," + deep + b"]"
    answer = target.http.post("/v1/events", content=batch, headers=server(target))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    assert [(f["index"], f["field"]) for f in answer.json()["failed"]] == [(1, "params.x")]


def test_an_order_nested_too_deep_fails_alone(target: Target) -> None:
    good = {
        "externalOrderId": "deep-good",
        "status": "INITIALIZED",
        "totalCost": 5,
        "date": "2026-01-01T10:00:00",
        "email": "order@x.io",
    }
    deep = {**good, "externalOrderId": "deep-bad", "meta": orjson.Fragment(nested(300))}
    body = orjson.dumps({"orders": [good, deep]})
    response = target.http.post("/v1/orders", content=body, headers=server(target))
    assert response.status_code == 200, response.text
    (failed,) = response.json()["failedOrders"]
    assert failed["index"] == 1 and "meta nests deeper than" in failed["errors"][0]
    assert target.http.get("/v1/orders/deep-good", headers=server(target)).status_code == 200
    assert target.http.get("/v1/orders/deep-bad", headers=server(target)).status_code == 404


def test_object_params_that_repeat_a_name_are_400_like_the_list_form(target: Target) -> None:
    """orjson keeps the last of repeated keys without a word: the first value was lost."""
    before = target.snapshot()
    single = with_params('{"email":"a@x.io","email":"b@x.io"}', "rep@x.io")
    response = send(target, single)
    assert response.status_code == 400, response.text
    error = response.json()
    assert (error["error"], error["field"]) == ("duplicate_param", "params.email")
    assert target.snapshot() == before
    batch = b'{"events":[' + with_params('{"n":1}', "rep@x.io") + b"," + single + b"]}"
    answer = target.http.post("/v1/events", content=batch, headers=server(target)).json()
    assert answer["accepted"] == 1
    assert [(f["index"], f["error"]) for f in answer["failed"]] == [(1, "duplicate_param")]


def test_gzip_members_are_all_read_and_what_follows_them_is_checked(target: Target) -> None:
    event = b'{"eventTypeKey":"c","keyValue":"gz@x.io"}'
    members = gzip.compress(event[:20]) + gzip.compress(event[20:])  # as `gzip -c a b` writes
    for body in (members, members + b"\0\0\0"):
        response = send(target, body, **{"content-encoding": "gzip"})
        assert response.status_code == 200, response.text
    response = send(target, gzip.compress(event) + b"junk", **{"content-encoding": "gzip"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_gzip")


@pytest.mark.parametrize(
    ("product", "field"),
    [
        ({"productId": "a", "price": "1_000"}, "params.product.price"),
        ({"productId": "a", "price": "\u0661\u0662"}, "params.product.price"),  # Arabic-Indic
        ({"productId": "a", "quantity": "infinity"}, "params.product.quantity"),
    ],
    ids=["underscore", "other-digits", "infinity"],
)
def test_numbers_sent_as_text_must_read_as_json_numbers(
    target: Target, product: dict[str, Any], field: str
) -> None:
    """Python's float() took these; no client means them as numbers."""
    event = {"eventTypeKey": "productViewed", "keyValue": "n@x.io", "params": {"product": product}}
    response = send(target, orjson.dumps(event))
    assert (response.status_code, response.json()["field"]) == (400, field)
    event["params"] = {"product": {"productId": "a", "price": " 45.50 ", "quantity": "+2"}}
    assert send(target, orjson.dumps(event)).status_code == 200


def test_a_cart_whose_total_overflows_is_400(target: Target) -> None:
    """Each price and quantity is finite, the sum is not: it was stored as a null total."""
    products = [{"productId": "a", "quantity": 2, "price": 1e308}]
    event = {
        "eventTypeKey": "cartUpdated",
        "keyValue": "inf@x.io",
        "params": {"recycleStateId": "rs-inf", "products": products},
    }
    response = send(target, orjson.dumps(event))
    assert (response.status_code, response.json()["field"]) == (400, "params.products")
    assert target.http.get("/v1/carts/rs-inf", headers=server(target)).status_code == 404
