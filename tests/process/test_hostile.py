"""Hostile input against a real gateway process: never a 500, never a crash, nothing stored.

The endpoints come from the served OpenAPI description (so endpoints added later are thrown at
too); the requests are random or mutated bodies, params, headers, content types and encodings.
A request that is refused must leave the tenant's data exactly as it was (every key DUMPed before
and after). The specific limits (gzip bombs, nesting, huge numbers, long strings) are tested one
by one in test_limits.py.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api.openapi import build
from tests.support.faults import Target, small_gateway

pytestmark = pytest.mark.slow
EXAMPLES = 1000
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with small_gateway(tmp_path_factory.mktemp("hostile")) as running:
        yield running


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


VALID_ORDER = {
    "externalOrderId": "o-1",
    "status": "INITIALIZED",
    "totalCost": 3,
    "date": "2026-01-01T10:00:00",
    "email": "h@example.com",
    "items": [{"externalItemId": "i-1", "quantity": 1, "cost": 3}],
}


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid event or order with one to three fields replaced, dropped or added."""
    document: dict[str, Any] = orjson.loads(
        orjson.dumps(draw(st.sampled_from([VALID, VALID_ORDER])))
    )
    nested = "params" if "params" in document else "items"
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from([*document, f"{nested}.0.name", f"{nested}.0.value", "extra"]))
        value = draw(json_values | st.text(max_size=300))
        entries = document.get(nested)
        if field.startswith(nested + ".") and isinstance(entries, list) and entries:
            if isinstance(entries[0], dict):
                entries[0][field.rsplit(".", 1)[1]] = value
        elif draw(st.booleans()):
            document.pop(field, None)
        else:
            document[field] = value
    wrappers = [document, [document, VALID], {"events": [document]}, {"orders": [document]}]
    return draw(st.sampled_from(wrappers))


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
    token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-"), min_size=1, max_size=20)
    headers.update(draw(st.dictionaries(token, header_text, max_size=3)))  # any other headers
    if draw(st.booleans()):
        headers["origin"] = draw(st.sampled_from(["https://shop.example", "null"]) | header_text)
    body = draw(
        mutated().map(orjson.dumps)
        | mutated().map(orjson.dumps)
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


@dataclass
class Fuzzing:
    """What the hostile requests met: answers by status and by method and path template, and
    the first request that broke the rules, if one did (hypothesis's error, with the example)."""

    answers: Counter[str]
    failure: Exception | None

    @property
    def statuses(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.answers.items()) if k.isdigit()}


@pytest.fixture(scope="module")
def fuzzing(target: Target) -> Fuzzing:
    """The hostile requests, sent once for the module by whichever test needs them first."""
    answers: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def send_hostile_requests(data: Any) -> None:
        request = data.draw(hostile_request(target.tenant))
        template = request.pop("template")
        before = target.snapshot()
        response = target.http.request(**request)
        answers[f"{response.status_code}"] += 1
        answers[f"{request['method']} {template}"] += 1
        assert response.status_code < 500, (request, response.status_code, response.text)
        if response.status_code >= 400 and request["method"] != "HEAD":
            assert "error" in response.json(), response.text  # the one JSON error shape
        if response.status_code != 200:
            assert target.snapshot() == before, (request, response.status_code, response.text)

    try:
        send_hostile_requests()
    except Exception as failure:  # reported by the test whose rule it broke
        return Fuzzing(answers, failure)
    return Fuzzing(answers, None)


def test_random_requests_never_500_and_refusals_store_nothing(fuzzing: Fuzzing) -> None:
    if fuzzing.failure is not None:
        raise fuzzing.failure
    assert sum(fuzzing.statuses.values()) >= EXAMPLES


def test_the_gateway_survived_the_fuzzing(target: Target, fuzzing: Fuzzing) -> None:
    statuses = fuzzing.statuses
    operations = len(fuzzing.answers) - len(statuses)
    total = sum(statuses.values())
    print(f"\nhostile requests: {total} over {operations} method/path pairs, {statuses}")
    assert operations > 40  # most method/path pairs were hit
    assert target.http.get("/healthz").status_code == 200
    assert target.http.get("/readyz").status_code == 200
