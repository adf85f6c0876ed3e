"""Erasure as processes live it (docs/privacy.md, Erasure): the stream work of an erasure
survives the gateway being killed mid-scan and is finished by the restarted one; with the
embedded Redis the append-only file is rewritten, so the erased values leave the disk; every
erasure, suppression and lift is in the log with the key's id and the identifier's kind, never
the value, and in the served process's /metrics."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from gateway.redis.keys import TenantKeys
from tests.support.gateways import free_port, start_gateway, stop_gateway, unique, write_config
from tests.support.metrics import sample

pytestmark = pytest.mark.slow

EMAIL = "kill-me@example.com"
FILLER = 100_000  # other contacts' events: hundreds of erase.lua chunks


def page(who: str) -> dict[str, object]:
    return {
        "eventTypeKey": "pageViewed",
        "keyValue": who,
        "params": [{"name": "page", "value": '{"location":"https://shop.example/p"}'}],
    }


def post(base: str, tenant: str, body: object) -> httpx.Response:
    headers = {"authorization": f"Bearer sk_{tenant}"}
    return httpx.post(f"{base}/v1/events", json=body, headers=headers, timeout=30)


# Writes `count` events of other contacts as the gateway stores them, with one of the erased
# contact's (under its id) every 10,000: in Redis, so that a big stream takes a second, not a
# minute of round trips.
FILL = """
local mine = 0
for n = tonumber(ARGV[4]), tonumber(ARGV[4]) + tonumber(ARGV[2]) - 1 do
  local owner, who = 'other-' .. (n % 5000), 'other-' .. (n % 5000) .. '@example.com'
  if n % 10000 == 5000 then owner, who, mine = ARGV[1], ARGV[3], mine + 1 end
  local raw = '{"eventId":"f-' .. n .. '","eventTypeKey":"pageViewed","keyValue":"' .. who .. '"}'
  redis.call('XADD', KEYS[1], '*', 'c', owner, 'e', raw)
end
return mine
"""


def fill(client: redis.Redis, keys: TenantKeys, contact_id: str, count: int) -> int:
    """Other contacts' events, and how many of the erased contact's among them."""
    step = 20_000
    return sum(
        int(client.eval(FILL, 1, keys.events, contact_id, step, EMAIL, start))
        for start in range(0, count, step)
    )


def holding(client: redis.Redis, keys: TenantKeys, contact_id: str) -> int:
    """Entries of the stream that are the erased contact's, by its id or its email."""
    found, last, owner = 0, "-", contact_id.encode()
    while True:
        rows = client.xrange(keys.events, last, "+", count=10_000)
        found += sum(1 for _, f in rows if f[b"c"] == owner or EMAIL.encode() in f[b"e"])
        if len(rows) < 10_000:
            return found
        last = "(" + rows[-1][0].decode()


def test_an_erasure_killed_mid_scan_is_finished_after_a_restart(tmp_path: Path, redis_url: str):
    tenant = unique("erase")
    keys = TenantKeys.for_tenant(tenant)
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"REDIS_URL": redis_url}
    auth = {"authorization": f"Bearer sk_{tenant}"}
    gateway = start_gateway(port, env, "--config", str(config))
    client = redis.Redis.from_url(redis_url)
    try:
        assert post(base, tenant, [page(EMAIL), page(EMAIL)]).status_code == 200
        contact_id = httpx.get(f"{base}/v1/contacts/{EMAIL}", headers=auth).json()["id"]
        mine = 2 + fill(client, keys, contact_id, FILLER)
        assert post(base, tenant, [page(EMAIL), page("kept@example.com")]).status_code == 200
        mine += 1
        total = client.xlen(keys.events)

        started = httpx.delete(f"{base}/v1/contacts/{EMAIL}", headers=auth)
        assert started.status_code == 202
        erasure = started.json()["erasure"]
        record = keys.erasure(erasure)
        deadline = time.monotonic() + 60
        while not client.hget(record, "cursor") and time.monotonic() < deadline:
            time.sleep(0.002)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        # killed mid-scan: some of its events erased, not all
        assert client.hget(record, "status") == b"running"
        assert client.hget(record, "step") == b"1"
        assert 0 < holding(client, keys, contact_id) < mine

        gateway = start_gateway(port, env, "--config", str(config))
        deadline = time.monotonic() + 120
        answer: dict[str, object] = {}
        while time.monotonic() < deadline:
            answer = httpx.get(f"{base}/v1/erasures/{erasure}", headers=auth).json()
            if answer["status"] == "done":
                break
            time.sleep(0.2)
        assert answer["status"] == "done"
        assert answer["counts"]["events"] == mine  # type: ignore[index]
        assert holding(client, keys, contact_id) == 0
        assert client.xlen(keys.events) == total - mine
        assert client.zcard(keys.erasures) == 0
    finally:
        stop_gateway(gateway)
        client.close()


def test_the_embedded_redis_rewrites_its_file_and_the_log_names_no_value(tmp_path: Path):
    tenant = unique("aof")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    data, log = tmp_path / "data", tmp_path / "gateway.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer sk_{tenant}"}
    env = {"REDIS_URL": "", "GATEWAY_DATA_DIR": str(data)}
    gateway = start_gateway(port, env, "--config", str(config), log=log)
    aof = data / "appendonly.aof"
    try:
        assert post(base, tenant, [page(EMAIL), page("kept@example.com")]).status_code == 200
        deadline = time.monotonic() + 30
        while EMAIL.encode() not in aof.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)  # appendfsync everysec
        assert EMAIL.encode() in aof.read_bytes()
        started = httpx.delete(f"{base}/v1/contacts/{EMAIL}?suppress=true", headers=auth)
        assert started.status_code == 202
        deadline = time.monotonic() + 60
        while EMAIL.encode() in aof.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert EMAIL.encode() not in aof.read_bytes()
        assert b"kept@example.com" in aof.read_bytes()
        assert (
            httpx.get(f"{base}/v1/erasures/{started.json()['erasure']}", headers=auth).json()[
                "status"
            ]
            == "done"
        )
        lifted = httpx.delete(f"{base}/v1/suppressions/{EMAIL}", headers=auth)
        assert lifted.json() == {"lifted": ["email"]}
        # the served process's /metrics (every worker's counts: GATEWAY_METRICS_DIR)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{base}/metrics").text
            if sample(metrics, "gateway_erasures_done_total", tenant=tenant) == 1:
                break
            time.sleep(0.1)
        assert sample(metrics, "gateway_erasures_done_total", tenant=tenant) == 1
        assert sample(metrics, "gateway_suppressions_total", tenant=tenant, action="lifted") == 1
    finally:
        assert stop_gateway(gateway) == 0
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    audited = ("contact erased", "contact suppressed", "suppression lifted")
    audit = [line for line in lines if line.get("message") in audited]
    key_id = hashlib.sha256(f"sk_{tenant}".encode()).hexdigest()[:8]
    assert [(a["message"], a["tenant"], a["keyId"], a["kind"]) for a in audit] == [
        ("contact erased", tenant, key_id, "email"),
        ("contact suppressed", tenant, key_id, "email"),
        ("suppression lifted", tenant, key_id, "email"),
    ]
    assert EMAIL.encode() not in log.read_bytes()
    assert f"sk_{tenant}".encode() not in log.read_bytes()
