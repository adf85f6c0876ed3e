"""The real thing: `gateway serve`, its embedded Redis, restarts, signals.

The contract: docs/configuration.md, Command line and environment; docs/operations.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import gateway
from gateway.redis.keys import TenantKeys
from tests.support.gateways import free_port, gateway_command, start_gateway, stop_gateway

PAGE = {
    "eventTypeKey": "pageViewed",
    "keyValue": "ann@example.com",
    "params": [{"name": "page", "value": '{"location":"myapp://home"}'}],
}

pytestmark = pytest.mark.slow

DEFAULT = "http://127.0.0.1:8080"  # where `gateway serve` listens without options


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
        assert stop_gateway(process) == 0
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
        assert stop_gateway(process) == 0


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
        assert stop_gateway(process) == 0
    # The workers log JSON lines too (they logged plain text, and nothing below warning).
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    started = [line for line in lines if line["message"].startswith("Application startup")]
    assert len(started) == 2


def test_bad_config_stops_start_up_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[tenants]]\nid = "t"\nserver_keys = ["k"]\nvisit_timeout = 5\n')
    result = gateway_command("serve", "--config", str(config))
    assert result.returncode == 2
    assert "tenants[0].visit_timeout: unknown config key" in result.stderr


def test_help_names_every_option():
    result = gateway_command("serve", "--help")
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
    result = gateway_command("serve", option, value)
    assert result.returncode == 2
    assert f"argument {option}: {error}" in result.stderr


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
        stop_gateway(process)
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json()["error"] == "internal_error"
    assert "WRONGTYPE" in log.read_text()


def wait_until_free(port: int, timeout: float = 120) -> None:
    """The default port may be held for a while by another run of this suite."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind(("127.0.0.1", port))
                return
            except OSError:
                pass
        assert time.monotonic() < deadline, (
            f"port {port} stayed taken for {timeout:.0f} s: `gateway serve` listens there without"
            " options, and no environment variable moves it"
        )
        time.sleep(0.2)


def console_script(cwd: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`gateway serve` as typed in a terminal: the installed console script, no option, no
    REDIS_URL, GATEWAY_DATA_DIR or GATEWAY_CONFIG, started as a shell starts a job (a process
    group of its own, which Ctrl-C signals). The process, once it serves on 127.0.0.1:8080, and
    the server key it printed."""
    script = Path(sys.executable).parent / "gateway"
    unset = ("REDIS_URL", "GATEWAY_DATA_DIR", "GATEWAY_CONFIG")
    env = {name: value for name, value in os.environ.items() if name not in unset}
    # the script is to run the code under test (a checkout's, if that is what the tests import)
    checkout = str(Path(gateway.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))
    for _ in range(3):  # another run may take the port between the check and the bind
        wait_until_free(8080)
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(script), "serve"],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while process.poll() is None:
            printed = re.search(r"server key \(.*\): (\S+)", log.read_text())
            try:
                if printed and httpx.get(f"{DEFAULT}/healthz", timeout=0.5).status_code == 200:
                    return process, printed.group(1)
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not serving after 30 s:\n{log.read_text()}"
            time.sleep(0.05)
        if "address already in use" not in log.read_text():
            break
    raise AssertionError(f"gateway serve exited with {process.returncode}:\n{log.read_text()}")


def ctrl_c(process: subprocess.Popen[bytes]) -> int:
    """What Ctrl-C in the terminal does: SIGINT to the job's process group. The exit status."""
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=20)


def test_the_console_script_with_no_options_serves_and_keeps_its_data(tmp_path: Path) -> None:
    """What a user runs first: `gateway serve` in an empty directory. It serves on
    127.0.0.1:8080, keeps its data in ./.gateway-data, prints the keys it generated there,
    stops with status 0 on Ctrl-C, and the next start in the same directory has the event."""
    event = {**PAGE, "keyValue": "typed@example.com", "eventId": "first-event"}
    data = tmp_path / ".gateway-data"
    process, key = console_script(tmp_path, tmp_path / "first.log")
    try:
        assert json.loads((data / "keys.json").read_text())["server_key"] == key
        auth = {"authorization": f"Bearer {key}"}
        answer = httpx.post(f"{DEFAULT}/v1/event", json=event, headers=auth)
        assert answer.json() == {"status": "accepted", "eventId": "first-event"}, answer.text
    finally:
        code = ctrl_c(process)
    assert code == 0, (tmp_path / "first.log").read_text()
    assert '"message":"embedded redis stopped"' in (tmp_path / "first.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gateway-data", "first.log"]
    process, again = console_script(tmp_path, tmp_path / "second.log")
    try:
        assert again == key  # generated once, kept in .gateway-data/keys.json
        events = httpx.get(f"{DEFAULT}/v1/events?contact=typed@example.com", headers=auth)
        assert [e["eventId"] for e in events.json()["events"]] == ["first-event"]
    finally:
        code = ctrl_c(process)
    assert code == 0, (tmp_path / "second.log").read_text()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("foo://x", "unknown scheme 'foo'"),
        ("redis+cluster://", "'' is not host:port"),
        ("redis+cluster://h:99999", "'99999' is not a port (1-65535)"),
        ("redis+cluster://user:s3cret@h", "'h' is not host:port"),
        ("rediss+cluster://u:s3cret@h:1,h2:0", "'0' is not a port (1-65535)"),
        ("redis://:s3cret@:99999", "no host"),
        ("redis://:s3cret@h:99999", "the port is not a number"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_malformed_redis_url_stops_start_up_without_showing_its_password(
    tmp_path, url, problem, command
):
    config = tmp_path / "gateway.toml"
    config.write_text('[[tenants]]\nid = "t"\nserver_keys = ["sk_t_0123456789"]\n')
    env = {"REDIS_URL": url, "GATEWAY_CONFIG": str(config), "GATEWAY_DATA_DIR": str(tmp_path)}
    port = free_port()
    result = gateway_command(command, *(["--port", str(port)] * (command == "serve")), env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("gateway: configuration error: REDIS_URL "), result.stderr
    assert problem in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    if "s3cret" in url:
        assert "***@" in result.stderr  # the URL is shown, its credentials masked
    with socket.socket() as sock:  # it never listened
        assert sock.connect_ex(("127.0.0.1", port)) != 0
