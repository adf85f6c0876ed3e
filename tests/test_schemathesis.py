"""schemathesis against the `/openapi.json` a real gateway serves (SPEC §4-§9).

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
from conftest import free_port, start_gateway, unique
from faults import write_config
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

pytestmark = pytest.mark.slow

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


@pytest.fixture(scope="module")
def gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("schemathesis")
    tenant = unique("schema")
    config = write_config(folder / "gateway.toml", [tenant])
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
    } <= set(document["paths"])


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
def test_schemathesis(gateway: tuple[str, str], mode: GenerationMode) -> None:
    base, key = gateway
    # from_dict, not from_url: from_url would quietly leave /openapi.json itself out.
    served = httpx.get(f"{base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(served)
    checks: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance]
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
