"""The real thing: `python -m gateway serve`, its embedded Redis, restarts, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest
from conftest import ROOT, free_port, start_gateway

from gateway.redis.keys import TenantKeys

PAGE = {
    "eventTypeKey": "pageViewed",
    "keyValue": "ann@example.com",
    "params": [{"name": "page", "value": '{"location":"myapp://home"}'}],
}

pytestmark = pytest.mark.slow


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


def test_serves_on_embedded_redis_and_keeps_data_across_restarts(tmp_path):
    data = tmp_path / "data"
    env = {"REDIS_URL": "", "GATEWAY_DATA_DIR": str(data), "GATEWAY_CONFIG": ""}
    port = free_port()
    log = tmp_path / "first.log"
    process = start_gateway(port, env, log=log)
    keys = json.loads((data / "keys.json").read_text())
    auth = {"authorization": f"Bearer {keys['server_key']}"}
    base = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(f"{base}/readyz").status_code == 200
        response = httpx.post(f"{base}/v1/event", json=PAGE, headers=auth)
        assert response.status_code == 200, response.text
        assert "server" not in response.headers and response.headers["date"]
        site = httpx.post(
            f"{base}/v1/event?key={keys['site_key']}",
            json=PAGE,
            headers={"origin": "https://any.example"},
        )
        assert site.status_code == 200
    finally:
        assert stop(process) == 0
    printed = log.read_text()
    assert keys["server_key"] in printed and keys["site_key"] in printed
    assert '"message":"embedded redis stopped"' in printed
    # the embedded Redis went down with the gateway ...
    assert (
        not (data / "redis.sock").exists()
        or subprocess.run(["pgrep", "-f", str(data / "redis.sock")], capture_output=True).returncode
        != 0
    )
    # ... and a restart finds the same keys and the stored contact
    process = start_gateway(port, env, log=tmp_path / "second.log")
    try:
        assert json.loads((data / "keys.json").read_text()) == keys
        contact = httpx.get(f"{base}/v1/contacts/ann@example.com", headers=auth)
        assert contact.status_code == 200
        events = httpx.get(f"{base}/v1/events?contact=ann@example.com", headers=auth).json()
        assert [e["channel"] for e in events["events"]] == ["app", "app"]
    finally:
        assert stop(process) == 0


def test_two_workers_share_one_redis(tmp_path, redis_url):
    config = tmp_path / "gateway.toml"
    config.write_text('[[tenants]]\nid = "w2"\nserver_keys = ["sk_w2_test"]\n')
    port = free_port()
    log = tmp_path / "gateway.log"
    process = start_gateway(
        port, {"REDIS_URL": redis_url}, "--workers", "2", "--config", str(config), log=log
    )
    auth = {"authorization": "Bearer sk_w2_test"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
            for n in range(20):
                body = {**PAGE, "keyValue": "w2@example.com", "eventId": f"w2-{n}"}
                assert client.post("/v1/event", json=body).status_code == 200
            events = client.get("/v1/events?contact=w2@example.com&limit=100").json()["events"]
            assert len(events) == 20
    finally:
        assert stop(process) == 0
    # The workers log JSON lines too (they logged plain text, and nothing below warning).
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    started = [line for line in lines if line["message"].startswith("Application startup")]
    assert len(started) == 2


def test_bad_config_stops_start_up_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[tenants]]\nid = "t"\nserver_keys = ["k"]\nvisit_timeout = 5\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 2
    assert "tenants[0].visit_timeout: unknown config key" in result.stderr


def test_help_names_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--config", "REDIS_URL", "GATEWAY_DATA_DIR"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--port", "99999", "99999 is not a port (1-65535)"),  # was served on 34463, logged 99999
        ("--port", "0", "'0' is not a whole number of at least 1"),
        ("--workers", "0", "'0' is not a whole number of at least 1"),
        ("--workers", "65", "65 is more than 64 worker processes"),  # 100000 forked until OOM
    ],
)
def test_impossible_options_stop_start_up_naming_them(option, value, error):
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", option, value],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"argument {option}: {error}" in result.stderr


def test_the_redis_password_is_not_logged(tmp_path):
    """Given in the URL's query (redis-py reads `?password=`), it was logged in clear."""
    config = tmp_path / "gateway.toml"
    config.write_text('[[tenants]]\nid = "t"\nserver_keys = ["sk_password_test"]\n')
    port = free_port()
    url = f"redis://:userinfo-secret@127.0.0.1:{free_port()}/0?password=query-secret"
    process = start_gateway(port, {"REDIS_URL": url}, "--config", str(config), log=tmp_path / "log")
    stop(process)  # started: it answered /healthz, after logging where Redis is
    logged = (tmp_path / "log").read_text()
    assert "secret" not in logged
    assert "password=***" in logged and "***@127.0.0.1" in logged


def test_an_unforeseen_failure_is_a_json_500_and_logged(tmp_path, redis_url, sync_redis):
    """Every error is JSON: a failure nothing foresaw (here a contact key damaged by another
    program) was a plain-text 500 on every path."""
    config = tmp_path / "gateway.toml"
    config.write_text('[[tenants]]\nid = "broken"\nserver_keys = ["sk_broken_test"]\n')
    keys = TenantKeys.for_tenant("broken")
    sync_redis.set(keys.identifier("email", "bad@example.com"), "damaged")
    sync_redis.set(keys.contact("damaged"), "not a hash")
    port, log = free_port(), tmp_path / "gateway.log"
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config), log=log)
    auth = {"authorization": "Bearer sk_broken_test"}
    event = {"eventTypeKey": "custom", "keyValue": "bad@example.com"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
            answers = [
                client.post("/v1/event", json=event),
                client.get("/v1/contacts/bad@example.com"),
            ]
    finally:
        stop(process)
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json()["error"] == "internal_error"
    assert "WRONGTYPE" in log.read_text()
