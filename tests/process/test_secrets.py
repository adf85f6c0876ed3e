"""Secrets never leave in clear: keys, the Redis password and a webhook URL's credentials are
not logged (a real gateway's log, at debug level where it matters) nor shown in answers."""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.gateways import free_port, start_gateway, stop_gateway, unique, write_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

SECRET = "whsec_test_secret"


def page(marker: str) -> dict[str, object]:
    return {
        "eventTypeKey": "pageViewed",
        "keyValue": f"{marker}@example.com",
        "params": [{"name": "page", "value": f'{{"location":"https://shop.example/{marker}"}}'}],
    }


async def test_a_webhook_urls_credentials_are_never_shown(tmp_path, redis_url, receiver):
    """Neither in the log (httpx logged every attempt's URL at INFO, the gateway each dead
    letter's) nor in GET /v1/webhooks/dead."""
    receiver.default = 500
    tenant = unique("leak")
    host_and_path = receiver.url.partition("://")[2]
    url = f"http://hookuser:hookpass@{host_and_path}?token=TOPSECRET&v=2"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[[tenants]]\nid = "{tenant}"\nserver_keys = ["sk_{tenant}"]\n'
        f'[[tenants.webhooks]]\nurl = "{url}"\nsecret = "{SECRET}"\n'
        "retry_initial_seconds = 0.05\nretry_budget_seconds = 0.3\n"
    )
    port, log = free_port(), tmp_path / "gateway.log"
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config), log=log)
    order = {
        "externalOrderId": "leak-1",
        "status": "INITIALIZED",
        "totalCost": 1,
        "date": "2024-01-01T00:00:00",
        "email": "leak@x.io",
    }
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer sk_{tenant}"}
        ) as http:
            answer = await http.post("/v1/orders", json={"orders": [order]})
            assert answer.status_code == 200 and answer.json() == {"failedOrders": []}

            async def dead() -> list[dict[str, str]]:
                return list((await http.get("/v1/webhooks/dead")).json()["dead"])

            await wait_for(dead, timeout=5.0)
            (letter,) = await dead()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    assert len(receiver.requests) >= 2  # the URL's user and password still go to the receiver
    assert receiver.requests[0][0]["authorization"] == "Basic aG9va3VzZXI6aG9va3Bhc3M="
    shown = f"http://***@{host_and_path}?token=***&v=***"
    assert letter["webhook"] == shown
    logged = log.read_text()
    assert "hookpass" not in logged and "TOPSECRET" not in logged
    assert "HTTP Request" not in logged
    (line,) = [json.loads(x) for x in logged.splitlines() if "webhook dead-lettered" in x]
    assert line["url"] == shown


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


def test_the_redis_password_is_not_logged(tmp_path):
    """Given in the URL's query (redis-py reads `?password=`), it was logged in clear."""
    config = tmp_path / "gateway.toml"
    config.write_text('[[tenants]]\nid = "t"\nserver_keys = ["sk_password_test"]\n')
    port = free_port()
    url = f"redis://:userinfo-secret@127.0.0.1:{free_port()}/0?password=query-secret"
    process = start_gateway(port, {"REDIS_URL": url}, "--config", str(config), log=tmp_path / "log")
    stop_gateway(process)  # started: it answered /healthz, after logging where Redis is
    logged = (tmp_path / "log").read_text()
    assert "secret" not in logged
    assert "password=***" in logged and "***@127.0.0.1" in logged
