"""schemathesis against the `/openapi.json` a real gateway serves (docs/api.md, The OpenAPI
description).

Every documented operation gets schema-conforming and schema-violating requests with a server
key: no 500, only documented statuses, and the documented content type. Bounded (a few dozen
examples per operation) so the whole run takes seconds.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.redis.keys import TenantKeys
from tests.support.gateways import free_port, start_gateway, unique, write_config

pytestmark = pytest.mark.slow

JSON = "application/json"
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
# Each answer: a documented status, its documented content type, headers and body schema.
CONFORMANCE: list[Any] = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("schemathesis")
    tenant = unique("schema")
    config = write_config(folder / "gateway.toml", [tenant])
    # A second tenant, `<tenant>-slow`, for the rate limit's answer (test_answers_as_described)
    slow = f"{tenant}-slow"
    config.write_text(
        config.read_text()
        + f'[[tenants]]\nid = "{slow}"\nserver_keys = ["sk_{slow}"]\nrate_limit_per_second = 1\n'
    )
    port = free_port()
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config))
    try:
        yield f"http://127.0.0.1:{port}", f"sk_{tenant}"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


def test_the_description_is_served_and_names_every_endpoint(gateway: tuple[str, str]) -> None:
    base, _ = gateway
    document = httpx.get(f"{base}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {
        "/v1/event",
        "/v1/events",
        "/v1/contacts/{identifier}",
        "/v1/orders",
        "/v1/orders/{externalOrderId}",
        "/v1/carts/{recycleStateId}",
        "/v1/triggers",
        "/v1/webhooks/dead",
        "/healthz",
        "/readyz",
        "/metrics",
        "/js/tracker.js",
    } <= set(document["paths"])
    assert {"post", "options"} <= set(document["paths"]["/v1/event"])
    assert {"get", "post", "options"} <= set(document["paths"]["/v1/events"])


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
def test_schemathesis(gateway: tuple[str, str], mode: GenerationMode) -> None:
    base, key = gateway
    # from_dict, not from_url: from_url would quietly leave /openapi.json itself out.
    served = httpx.get(f"{base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(served)
    checks: list[Any] = [not_a_server_error, *CONFORMANCE]
    statuses: Counter[int] = Counter()
    operations = []
    no_input: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(operation.label)
        spec = served["paths"][operation.path][operation.method.lower()]
        if mode is GenerationMode.NEGATIVE and not spec.get("parameters", spec.get("requestBody")):
            # It takes no input, so there is nothing to violate (the probes: covered positively).
            no_input.append(operation.label)
            continue

        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            response = case.call(base_url=base, headers={"authorization": f"Bearer {key}"})
            statuses[response.status_code] += 1
            case.validate_response(response, checks=checks)

        run()
    print(
        f"\nschemathesis {mode}: {len(operations)} operations, answers {dict(statuses)}, "
        f"no input to violate: {no_input}"
    )
    assert (
        no_input == []
        if mode is GenerationMode.POSITIVE
        else no_input
        == [
            f"GET {path}"
            for path, ops in served["paths"].items()
            if "parameters" not in ops.get("get", {"parameters": []})
        ]
    )
    assert sorted(operations) == sorted(
        f"{method.upper()} {path}" for path, ops in served["paths"].items() for method in ops
    )


def test_answers_as_described(gateway: tuple[str, str], sync_redis: Any) -> None:
    """What fuzzing seldom or never reaches, against the served description: order events whose
    order part is ignored, the preflight, the tracker, a 401, the rate limit, a 500, the `limit`
    defaults, and a 405's Allow on every path."""
    base, key = gateway
    tenant = key.removeprefix("sk_")
    served = httpx.get(f"{base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(served)
    server = {"authorization": f"Bearer {key}"}
    checked: list[str] = []

    def answer(status: int, method: str, path: str, **request: Any) -> Any:
        """The answer to a request, which must be `status`, as documented (content type,
        headers, body)."""
        case = schema[path][method].Case(**request)
        response = case.call(base_url=base)
        assert response.status_code == status, (method, path, response.text)
        case.validate_response(response, checks=CONFORMANCE)
        checked.append(f"{method} {path} {status}")
        return response

    def send(method: str, path: str, body: Any, **request: Any) -> Any:
        return answer(200, method, path, body=body, media_type=JSON, headers=server, **request)

    order_part_ignored = {
        "eventTypeKey": "orderDelivered",
        "keyValue": "o@example.com",
        "params": [{"name": "externalOrderId", "value": "never-created"}],
    }
    one = send("POST", "/v1/event", order_part_ignored).json()
    assert one["status"] == "ignored" and one["reason"]
    custom = {"eventTypeKey": "custom", "keyValue": "o@example.com"}
    batch = send("POST", "/v1/events", [order_part_ignored, custom, {}]).json()
    assert batch["accepted"] == 1 and batch["ignored"][0]["index"] == 0
    assert batch["failed"][0]["index"] == 2

    site_key = {"key": f"pk_{tenant}"}
    for path in ("/v1/event", "/v1/events"):
        origin = {"origin": "https://shop.example", "access-control-request-method": "POST"}
        answer(204, "OPTIONS", path, query=site_key, headers=origin)
        answer(403, "OPTIONS", path, query=site_key, headers={"origin": "https://evil.example"})
    etag = answer(200, "GET", "/js/tracker.js").headers["etag"][0]
    answer(304, "GET", "/js/tracker.js", headers={"if-none-match": etag})

    answer(401, "GET", "/v1/events")
    slow = {"authorization": f"Bearer sk_{tenant}-slow"}  # 1 request per second
    httpx.get(f"{base}/v1/triggers", headers=slow)  # takes the one token of its bucket
    answer(429, "GET", "/v1/triggers", headers=slow)
    answer(429, "POST", "/v1/event", headers=slow, body=custom, media_type=JSON)

    # A failure nobody foresaw: a contact key damaged by another program.
    keys = TenantKeys.for_tenant(tenant)
    sync_redis.set(keys.identifier("email", "bad@example.com"), "damaged")
    sync_redis.set(keys.contact("damaged"), "not a hash")
    bad = {"identifier": "bad@example.com"}
    failed = answer(500, "GET", "/v1/contacts/{identifier}", headers=server, path_parameters=bad)
    assert failed.json()["error"] == "internal_error"

    # The documented default of `limit` is what a request without one gets.
    order = {"status": "INITIALIZED", "totalCost": 1, "date": "2026-01-01T10:00:00"}
    orders = [
        {**order, "externalOrderId": f"o-{n}", "email": "many@example.com"} for n in range(120)
    ]
    send("POST", "/v1/orders", {"orders": orders})  # a trigger each
    send("POST", "/v1/events", [{"eventTypeKey": "custom", "keyValue": "many@example.com"}] * 120)

    def default_limit(path: str) -> int:
        (limit,) = [p for p in served["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        return int(limit["schema"]["default"])

    for path, field in (("/v1/events", "events"), ("/v1/triggers", "triggers")):
        listed = answer(200, "GET", path, headers=server).json()[field]
        assert len(listed) == default_limit(path), path
    assert default_limit("/v1/webhooks/dead") == default_limit("/v1/triggers")  # one constant

    # Any other method: 405 with Allow naming the documented ones (and HEAD, with GET).
    for path, operations in served["paths"].items():
        # PUT: no path answers it (DELETE erases a contact, even one named "…/export")
        refused = httpx.put(f"{base}{path.replace('{', '').replace('}', '')}", headers=server)
        assert refused.status_code == 405 and refused.json()["error"] == "method_not_allowed"
        documented = {method.upper() for method in operations}
        if "get" in operations:
            documented.add("HEAD")
        assert set(refused.headers["allow"].split(", ")) == documented, path
    print(f"\nanswered as described: {checked}")
