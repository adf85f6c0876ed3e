"""`gateway serve --workers 2`: `/metrics` reports the whole server, whichever worker answers
the scrape (docs/operations.md, Metrics)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.gateways import free_port, start_gateway, stop_gateway, unique, write_config
from tests.support.metrics import sample

pytestmark = pytest.mark.slow

EVENT = {
    "eventTypeKey": "pageViewed",
    "keyValue": "ann@example.com",
    "params": [{"name": "page", "value": '{"location":"https://shop.example/"}'}],
}


def counting_workers(tmp: Path) -> int:
    """How many worker processes have counted an accepted event: their index files (written
    under TMPDIR, gateway/shared_values.py) name the family."""
    return sum(
        b"gateway_events_accepted_total" in index.read_bytes()
        for index in tmp.glob("gateway-metrics-*/*.index")
    )


def test_every_scrape_counts_the_events_of_every_worker(tmp_path: Path, redis_url: str) -> None:
    tenant = unique("workers")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(tmp_path / "data"), "TMPDIR": str(tmp)}
    port = free_port()
    process = start_gateway(port, env, "--config", str(config), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    sent = 0
    try:
        # A new connection per event, until both workers have taken some (the kernel hands
        # connections to whichever worker accepts first).
        deadline = time.monotonic() + 60
        while counting_workers(tmp) < 2:
            assert time.monotonic() < deadline, "one worker took every connection for 60 s"
            for _ in range(10):
                answer = httpx.post(
                    f"{base}/v1/event", json=EVENT, headers={"authorization": f"Bearer sk_{tenant}"}
                )
                assert answer.json()["status"] == "accepted", answer.text
                sent += 1
        for _ in range(10):  # each scrape on a new connection, so both workers answer some
            text = httpx.get(f"{base}/metrics").text
            assert (
                sample(text, "gateway_events_accepted_total", tenant=tenant, type="pageViewed")
                == sent
            )
            assert sample(text, "gateway_request_duration_seconds_count", route="/v1/event") == sent
    finally:
        assert stop_gateway(process) == 0
    assert not list(tmp.glob("gateway-metrics-*")), "the metrics directory outlived the server"
