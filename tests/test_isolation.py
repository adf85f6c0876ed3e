"""Tenants, keys and origins (SPEC §3, §4): nothing of one tenant reaches another.

Every documented read endpoint is listed here with a way to store something of tenant a under a
unique marker; tenant b's key must get 404 for it (or not see it in a listing), site keys get 403,
no key 401. A test checks that the list covers every documented read endpoint, so a new endpoint
cannot go without an isolation test. Keys are checked against a real gateway's log.
"""

from __future__ import annotations

import base64
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.api.openapi import build
from gateway.model.events import ORDER_TYPES
from tests.support.gateways import ROOT, Api, free_port, start_gateway, unique, write_config


def page(marker: str) -> dict[str, object]:
    return {
        "eventTypeKey": "pageViewed",
        "keyValue": f"{marker}@example.com",
        "params": [{"name": "page", "value": f'{{"location":"https://shop.example/{marker}"}}'}],
    }


async def seed_event(a: Api, marker: str) -> None:
    assert (await a.event(page(marker))).status_code == 200


async def seed_cart(a: Api, marker: str) -> None:
    products = '[{"productId":"P1","quantity":1,"price":2}]'
    cart = {
        "eventTypeKey": "cartUpdated",
        "keyValue": f"{marker}@example.com",
        "params": {"products": products, "recycleStateId": marker},
    }
    assert (await a.event(cart)).status_code == 200


async def seed_order(a: Api, marker: str) -> None:
    order = {
        "externalOrderId": marker,
        "status": "INITIALIZED",
        "totalCost": 2,
        "date": "2026-01-01T10:00:00",
        "email": f"{marker}@example.com",
    }
    response = await a.http.post("/v1/orders", json={"orders": [order]}, headers=a.server())
    assert response.status_code == 200 and response.json()["failedOrders"] == []


@dataclass(frozen=True)
class Read:
    documented: str  # the path as in /openapi.json
    url: str  # the concrete URL, {m} = the marker
    seed: Callable[[Api, str], Awaitable[None]] | None  # None: nothing quick to store
    listing: bool = False  # True: b gets 200 without a's items; False: b gets 404


READS = [
    Read("/v1/contacts/{identifier}", "/v1/contacts/{m}@example.com", seed_event),
    Read("/v1/events", "/v1/events?contact={m}@example.com", seed_event),
    Read("/v1/events", "/v1/events?limit=1000", seed_event, listing=True),
    Read("/v1/orders/{externalOrderId}", "/v1/orders/{m}", seed_order),
    Read("/v1/carts/{recycleStateId}", "/v1/carts/{m}", seed_cart),
    Read("/v1/triggers", "/v1/triggers?limit=1000", seed_order, listing=True),  # order triggers
    Read("/v1/webhooks/dead", "/v1/webhooks/dead", None, listing=True),
]


def test_every_documented_read_has_an_isolation_case() -> None:
    # Those that take a key; the rest (probes, the tracker script) hold no tenant's data.
    documented = {
        path for path, ops in build()["paths"].items() if ops.get("get", {}).get("security")
    }
    assert "/healthz" not in documented and "/js/tracker.js" not in documented
    assert documented == {r.documented for r in READS}


@pytest.mark.parametrize("read", READS, ids=lambda r: r.url)
async def test_other_tenants_and_site_keys_read_nothing(make_api, read: Read) -> None:
    a, b = await make_api()
    marker = unique("iso")
    url = read.url.format(m=marker)
    if read.seed is not None:
        await read.seed(a, marker)
        mine = await a.get(url)
        assert mine.status_code == 200 and marker in mine.text, mine.text
    theirs = await b.get(url)
    if read.listing:
        assert theirs.status_code == 200 and marker not in theirs.text
    else:
        assert theirs.status_code == 404, theirs.text
    for site_key in (a.site_key, b.site_key):
        response = await a.http.get(url, headers={"authorization": f"Bearer {site_key}"})
        assert response.status_code == 403
        response = await a.http.get(f"{url}{'&' if '?' in url else '?'}key={site_key}")
        assert response.status_code == 403
    assert (await a.http.get(url)).status_code == 401


async def test_site_keys_cannot_send_order_events(make_api) -> None:
    a, _ = await make_api()
    for event_type in sorted(ORDER_TYPES):
        event = {"eventTypeKey": event_type, "keyValue": "o@example.com", "params": []}
        response = await a.event(event, site=True)
        assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    response = await a.http.post(f"/v1/orders?key={a.site_key}", json={"orders": []})
    assert response.status_code == 403


async def test_cors_only_for_configured_origins(make_api) -> None:
    a, _ = await make_api()
    good, evil = "https://shop.example", "https://evil.example"
    for path in ("/v1/event", "/v1/events"):
        url = f"{path}?key={a.site_key}"
        ask = {"access-control-request-method": "POST"}
        allowed = await a.http.options(url, headers={"origin": good, **ask})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == good
        refused = await a.http.options(url, headers={"origin": evil, **ask})
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        body = page("cors") if path == "/v1/event" else [page("cors")]
        sent = await a.http.post(url, json=body, headers={"origin": good})
        assert (sent.status_code, sent.headers["access-control-allow-origin"]) == (200, good)
        blocked = await a.http.post(url, json=body, headers={"origin": evil})
        assert blocked.status_code == 403
        assert "access-control-allow-origin" not in blocked.headers
        # a server key is for back-ends: never a CORS grant, whatever the origin says
        server = await a.http.post(path, json=body, headers={"origin": good, **a.server()})
        assert server.status_code == 200
        assert "access-control-allow-origin" not in server.headers
    read = await a.http.get("/v1/events", headers={"origin": good, **a.server()})
    assert "access-control-allow-origin" not in read.headers


def test_keys_are_never_logged(tmp_path: Path, redis_url: str) -> None:
    tenant = unique("logs")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    log = tmp_path / "gateway.log"
    process = start_gateway(
        port, {"REDIS_URL": redis_url}, "--config", str(config), "--log-level", "debug", log=log
    )
    keys = [f"sk_{tenant}", f"pk_{tenant}", "sk_not_a_real_key_but_secret"]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for key in keys:
                basic = base64.b64encode(f"user:{key}".encode()).decode()
                for headers, query in (
                    ({"authorization": f"Bearer {key}"}, ""),
                    ({"authorization": f"Basic {basic}"}, ""),
                    ({"origin": "https://evil.example"}, f"?key={key}"),
                    ({}, f"?key={key}"),
                ):
                    http.post(f"/v1/event{query}", json=page("log"), headers=headers)
                    http.post(f"/v1/events{query}", content=b"{broken", headers=headers)
                    http.get(f"/v1/contacts/log@example.com{query}", headers=headers)
                    http.get(f"/v1/nowhere{query}", headers=headers)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    text = log.read_text()
    assert '"message":"listening"' in text  # the log is being written
    for key in keys:
        assert key not in text
        assert base64.b64encode(f"user:{key}".encode()).decode() not in text
    print(
        f"\nkeys never logged: {len(keys)} keys x 16 requests, {len(text.splitlines())} log lines"
    )


def test_docker_image_runs_unprivileged_with_a_healthcheck() -> None:
    # No Docker daemon in the test environment: check the Dockerfile says so, at least.
    text = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "\nHEALTHCHECK " in text and "/healthz" in text
