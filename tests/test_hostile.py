"""Hostile input against a real gateway process: never a 500, never a crash, nothing stored.

The endpoints come from the served OpenAPI description (so endpoints added later are thrown at
too); the requests are random or mutated bodies, params, headers, content types and encodings.
A request that is refused must leave the tenant's data exactly as it was (every key DUMPed before
and after). The specific limits (gzip bombs, nesting, huge numbers, long strings) have their own
tests with the status they must get.
"""

from __future__ import annotations

import gzip
import re
import signal
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import redis
from conftest import free_port, start_gateway, unique
from faults import write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.openapi import build

pytestmark = pytest.mark.slow
ANSWERS: Counter[str] = Counter()  # status per method and path template, printed at the end
SMALL_LIMIT = 4096  # max_body_bytes of the hostile gateway, so bombs and floods are cheap
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


@dataclass
class Target:
    base: str
    tenant: str
    http: httpx.Client
    redis: redis.Redis
    log: Path

    def snapshot(self) -> dict[bytes, bytes | None]:
        keys = sorted(self.redis.scan_iter(match=f"gw:{self.tenant}:*", count=1000))
        dumps = self.redis.pipeline(transaction=False)
        for key in keys:
            dumps.dump(key)
        return dict(zip(keys, dumps.execute(), strict=True))


@pytest.fixture(scope="module")
def target(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("hostile")
    tenant = unique("hostile")
    config = write_config(folder / "gateway.toml", [tenant])
    config.write_text(
        f"[gateway]\nmax_body_bytes = {SMALL_LIMIT}\nmax_batch = 5\n" + config.read_text()
    )
    port = free_port()
    log = folder / "gateway.log"
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config), log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            client = redis.Redis.from_url(redis_url)
            try:
                yield Target(base, tenant, http, client, log)
            finally:
                client.close()
        assert process.poll() is None, "the gateway died"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(20)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text and '"level":"error"' not in text, text[-3000:]


# ---- what a hostile client sends ---------------------------------------------------------

PATHS = sorted(build()["paths"])
# The documented operations most of the time, any method on any path now and then.
OPERATIONS = [(m.upper(), p) for p, ops in build()["paths"].items() for m in ops]
operation = st.sampled_from(OPERATIONS)
any_operation = st.one_of(
    operation, operation, operation, st.tuples(st.sampled_from(METHODS), st.sampled_from(PATHS))
)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
header_text = printable.map(str.strip)  # h11 refuses to send surrounding white space
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
VALID = {
    "eventTypeKey": "productViewed",
    "keyValue": "h@example.com",
    "eventId": "e-1",
    "params": [
        {"name": "product", "value": '{"productId":"P1","price":4.5,"isInStock":1}'},
        {"name": "currencyCode", "value": "USD"},
    ],
}


@st.composite
def mutated_event(draw: st.DrawFn) -> Any:
    event: dict[str, Any] = orjson.loads(orjson.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from([*event, "params.0", "params.0.value", "extra"]))
        value = draw(json_values | st.text(max_size=300))
        if (
            field.startswith("params.")
            and isinstance(event.get("params"), list)
            and event["params"]
        ):
            entry = event["params"][0]
            if isinstance(entry, dict):
                entry["value" if field.endswith("value") else "name"] = value
        elif draw(st.booleans()):
            event.pop(field, None)
        else:
            event[field] = value
    return draw(st.sampled_from([event, [event, VALID], {"events": [event]}, {"orders": [event]}]))


def fill(template: str, filler: str) -> str:
    """A concrete path: every `{param}` replaced by the (quoted) hostile text."""
    return re.sub(r"\{[^}]+\}", lambda _: quote(filler, safe=""), template)


@st.composite
def hostile_request(draw: st.DrawFn, tenant: str) -> dict[str, Any]:
    method, template = draw(any_operation)
    path = fill(template, draw(printable))
    server = {"authorization": f"Bearer sk_{tenant}"}
    auth = draw(
        st.sampled_from(
            [
                server,
                server,
                {"authorization": f"Bearer pk_{tenant}"},
                {"authorization": f"Basic {draw(header_text)}".strip()},
                {"authorization": draw(header_text)},
                {},
            ]
        )
    )
    query = draw(
        st.dictionaries(
            st.sampled_from(["key", "limit", "contact", "type", "after", "x"]),
            printable,
            max_size=3,
        )
    )
    if draw(st.booleans()):
        query["key"] = f"pk_{tenant}"
    headers = dict(auth)
    content_type = draw(
        st.sampled_from(["application/json", "text/plain", "text/plain;charset=x", "", None])
        | header_text
    )
    if content_type is not None:
        headers["content-type"] = content_type
    if draw(st.booleans()):
        headers["origin"] = draw(st.sampled_from(["https://shop.example", "null"]) | header_text)
    body = draw(
        mutated_event().map(orjson.dumps)
        | mutated_event().map(orjson.dumps)
        | json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS))
        | st.binary(max_size=200)
    )
    encoding = draw(st.sampled_from([None, "gzip", "deflate", "identity"]) | header_text)
    if encoding is not None:
        headers["content-encoding"] = encoding
        if encoding == "gzip" and draw(st.booleans()):
            body = gzip.compress(body)
    return {
        "method": method,
        "url": path,
        "params": query,
        "headers": headers,
        "content": body,
        "template": template,
    }


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_requests_never_500_and_refusals_store_nothing(target: Target, data: Any) -> None:
    request = data.draw(hostile_request(target.tenant))
    template = request.pop("template")
    before = target.snapshot()
    response = target.http.request(**request)
    ANSWERS[f"{response.status_code}"] += 1
    ANSWERS[f"{request['method']} {template}"] += 1
    assert response.status_code < 500, (request, response.status_code, response.text)
    if response.status_code >= 400 and request["method"] != "HEAD":
        assert "error" in response.json(), response.text  # the one JSON error shape
    if response.status_code != 200:
        assert target.snapshot() == before, (request, response.status_code, response.text)


def test_the_gateway_survived_the_fuzzing(target: Target) -> None:
    statuses = {k: v for k, v in sorted(ANSWERS.items()) if k.isdigit()}
    operations = len(ANSWERS) - len(statuses)
    total = sum(statuses.values())
    print(f"\nhostile requests: {total} over {operations} method/path pairs, {statuses}")
    assert operations > 40  # most method/path pairs were hit
    assert target.http.get("/healthz").status_code == 200
    assert target.http.get("/readyz").status_code == 200


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
        "[12345678901234567890123]]",  # repaired path, beyond 64 bits
        "[" + "9" * 4000 + "]]",
        "[1e400]",
        "[NaN]]",
    ],
    ids=["deep", "big-int-repair", "4000-digits", "inf", "nan-repair"],
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
        ({"eventTypeKey": "c", "keyValue": "a@b.c", "params": {"n" * 101: 1}}, "params"),
        (
            {"eventTypeKey": "c", "keyValue": "a@b.c", "params": {f"p{i}": 1 for i in range(201)}},
            "params",
        ),
    ],
    ids=["keyValue", "visitorId", "eventId", "eventTypeKey", "param-name", "param-count"],
)
def test_strings_and_counts_are_limited(target: Target, event: dict[str, Any], field: str) -> None:
    response = send(target, orjson.dumps(event))
    assert response.status_code in (400, 413), response.text
    if response.status_code == 400:
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
