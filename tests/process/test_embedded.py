"""The embedded Redis itself: start-up on a large data set, one owner per data dir, and a server
that dies under a running gateway. Real redis-server and `gateway serve` processes throughout
(docs/operations.md, Embedded Redis)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from gateway.embedded.server import EmbeddedRedis
from gateway.embedded.watchdog import RedisWatchdog
from tests.support.gateways import ROOT, free_port, start_gateway, stop_gateway

pytestmark = pytest.mark.slow

EVENT = {"eventTypeKey": "custom", "keyValue": "ann@example.com", "eventId": "first"}


def alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped by init) counts as gone.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return bool(state.stdout.strip()) and not state.stdout.strip().startswith("Z")


def populate_and_rewrite(server: EmbeddedRedis, keys: int, size: int) -> None:
    """`keys` values of `size` bytes, then an AOF rewrite, so the AOF starts with an RDB preamble
    (what a long-running server's AOF looks like, and what Redis's key-load-delay slows down)."""
    client = redis.Redis.from_url(server.url)
    try:
        client.execute_command("DEBUG", "POPULATE", keys, "key", size)
        client.bgrewriteaof()
        deadline = time.monotonic() + 10
        while True:
            info = client.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                break
            assert time.monotonic() < deadline, "AOF rewrite did not finish"
            time.sleep(0.05)
    finally:
        client.close()


def test_start_waits_while_the_server_loads_a_large_data_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server answering -LOADING is alive: start-up waits for it past the no-answer timeout
    (here 2 s, loading ~4.5 s) and logs its progress, instead of killing it mid-load."""
    data = tmp_path / "redis"
    port = free_port()
    # Uncompressed: DEBUG POPULATE's values would shrink to nothing in the RDB preamble.
    server = EmbeddedRedis(data, port=port, extra_args=("--rdbcompression", "no"))
    server.start()
    try:
        # 40 MB: while loading, Redis answers clients (-LOADING) after every 2 MB it has read.
        populate_and_rewrite(server, 4000, 10_000)
    finally:
        server.stop()
    # Redis's own testing knob: sleep 1 ms per key loaded (4000 keys: ~4.5 s of -LOADING).
    slow = EmbeddedRedis(data, port=port, extra_args=("--key-load-delay", "1000"))
    caplog.set_level(logging.INFO, logger="gateway.embedded")
    started = time.monotonic()
    try:
        slow.start(timeout=2.0, progress_every=0.5)
        waited = time.monotonic() - started
        client = redis.Redis.from_url(slow.url)
        try:
            assert client.dbsize() == 4000
        finally:
            client.close()
    finally:
        slow.stop()
    progress = [r for r in caplog.records if r.getMessage() == "embedded redis is loading its data"]
    print(f"\nstart-up waited {waited:.1f}s through loading; {len(progress)} progress lines")
    assert waited > 3
    assert [r for r in progress if 0 <= getattr(r, "loaded_perc", -1) <= 100]


def server_pid(data: Path) -> int:
    """The pid of the redis-server answering on the data dir's socket."""
    client = redis.Redis.from_url(f"unix://{data / 'redis.sock'}", socket_timeout=2)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def serve_env(data: Path) -> dict[str, str]:
    return {"REDIS_URL": "", "GATEWAY_DATA_DIR": str(data), "GATEWAY_CONFIG": ""}


def served(
    data: Path, port: int, *args: str, log: Path | None = None
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """`gateway serve` on the embedded Redis of `data`: the process, its address, the header
    of its generated server key."""
    process = start_gateway(port, serve_env(data), *args, log=log)
    keys = json.loads((data / "keys.json").read_text())
    return process, f"http://127.0.0.1:{port}", {"authorization": f"Bearer {keys['server_key']}"}


def test_a_second_gateway_on_the_same_data_dir_leaves_the_first_alone(tmp_path: Path) -> None:
    """The second start fails (its port is taken too) and must not have stopped the first
    gateway's live Redis on its way: it refuses at once, naming the data dir and the owner."""
    data = tmp_path / "data"
    port = free_port()
    first, base, auth = served(data, port)
    try:
        assert httpx.post(f"{base}/v1/event", json=EVENT, headers=auth).status_code == 200
        before = server_pid(data)
        second = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env={**os.environ, **serve_env(data)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1, second.stderr
        refusal = [json.loads(line) for line in second.stderr.splitlines() if '"error"' in line]
        assert len(refusal) == 1, second.stderr
        assert str(data) in refusal[0]["message"] and str(first.pid) in refusal[0]["message"]
        assert refusal[0]["owner_pid"] == first.pid
        # the first gateway's Redis is the same process, and it still stores events
        assert server_pid(data) == before
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.post(f"{base}/v1/event", json=EVENT, headers=auth).status_code == 200
    finally:
        assert stop_gateway(first) == 0


def test_a_leftover_server_of_a_killed_gateway_is_taken_over(tmp_path: Path) -> None:
    """SIGKILL of the gateway leaves its Redis running, owned by nobody: the next start on the
    same data dir stops it (saving) and starts its own, and finds what was stored."""
    data = tmp_path / "data"
    port = free_port()
    first, base, auth = served(data, port)
    try:
        assert httpx.post(f"{base}/v1/event", json=EVENT, headers=auth).status_code == 200
        orphan = server_pid(data)
    finally:
        first.kill()
        first.wait(10)
    assert server_pid(data) == orphan  # still running, its owner gone
    try:
        second = start_gateway(port, serve_env(data))
    except RuntimeError:
        os.kill(orphan, signal.SIGTERM)
        raise
    try:
        assert server_pid(data) != orphan
        assert not alive(orphan)
        contact = httpx.get(f"{base}/v1/contacts/ann@example.com", headers=auth)
        assert contact.status_code == 200
    finally:
        assert stop_gateway(second) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_redis_server_is_restarted_and_ingest_recovers(
    tmp_path: Path, workers: int
) -> None:
    """kill -9 of the embedded redis-server: the gateway answers 503 for a moment, restarts the
    server on the same data dir by itself (its workers reconnect over the socket) and stores
    again; what was acknowledged before is still there (the AOF)."""
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "gateway.log"
    gateway, base, auth = served(data, port, "--workers", str(workers), log=log)
    try:
        assert httpx.post(f"{base}/v1/event", json=EVENT, headers=auth).status_code == 200
        killed = server_pid(data)
        os.kill(killed, signal.SIGKILL)
        started = time.monotonic()
        statuses: list[int] = []
        for n in range(1000):
            body = {**EVENT, "eventId": f"after-{n}"}
            answer = httpx.post(f"{base}/v1/event", json=body, headers=auth, timeout=6)
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            assert time.monotonic() - started < 10, "ingest did not recover within 10 s"
            time.sleep(0.05)
        recovered = time.monotonic() - started
        assert server_pid(data) != killed
        events = httpx.get(f"{base}/v1/events?contact=ann@example.com", headers=auth).json()
        assert "first" in [e["eventId"] for e in events["events"]]
    finally:
        assert stop_gateway(gateway) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    exited = [e for e in lines if e["message"].startswith("embedded redis-server exited")]
    back = [e for e in lines if e["message"] == "embedded redis-server is back"]
    print(f"\nredis-server SIGKILL, --workers {workers}: ingest back after {recovered:.2f}s")
    # 503s until the server is back, unless it was back before the first request got there
    assert set(statuses[:-1]) <= {503} and statuses[-1] == 200
    assert [(e["level"], e["exit_code"], e["pid"]) for e in exited] == [("error", -9, killed)]
    assert [e["level"] for e in back] == ["info"]


def test_a_server_that_cannot_start_is_retried_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher keeps trying, further and further apart, and stops failing once the cause is
    gone. The cause here: an AOF that is not one (Redis exits at start-up with status 1)."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    aof = server.data_dir / "appendonly.aof"
    caplog.set_level(logging.INFO, logger="gateway.embedded")
    watchdog = RedisWatchdog(server, backoff=(0.2, 1.0)).start()

    def logged(message: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == message]

    def wait_until(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    try:
        assert server.process is not None
        good = server.process
        good.send_signal(signal.SIGSTOP)  # nothing more is written while the AOF is swapped
        saved = aof.read_bytes()
        aof.write_bytes(b"not an append-only file\n")
        good.kill()
        # at once, then 0.2, 0.4 and 0.8 s later: the first four attempts, then the cause goes
        wait_until(
            lambda: len(logged("embedded redis-server could not be restarted")) >= 4,
            "four failed restart attempts",
        )
        aof.write_bytes(saved)
        wait_until(lambda: bool(logged("embedded redis-server is back")), "the server back")
        assert server.ping()
    finally:
        server.stop()
        watchdog.join()
    messages = [r.getMessage() for r in caplog.records]
    messages = [m for m in messages if m.startswith("embedded redis-server")]
    retries = logged("embedded redis-server could not be restarted")
    gaps = [round(b.created - a.created, 2) for a, b in zip(retries, retries[1:], strict=False)]
    print(f"\na server that cannot start: {len(retries)} attempts, {gaps} s apart")
    assert messages[0].startswith("embedded redis-server exited")
    assert all(getattr(r, "exit_code", None) == 1 for r in retries)
    delays = [getattr(r, "retry_in", None) for r in retries]
    assert delays[:4] == [0.2, 0.4, 0.8, 1.0] and set(delays[4:]) <= {1.0}
    # each attempt waited the delay the one before announced: a backoff, not a tight loop
    assert all(gap >= delay - 0.02 for gap, delay in zip(gaps, delays, strict=False))
