"""The embedded Redis itself: start-up on a large data set, one owner per data dir, and a server
that dies under a running gateway. Real redis-server and `gateway serve` processes throughout."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import redis
from conftest import free_port

from gateway.embedded import EmbeddedRedis

pytestmark = pytest.mark.slow


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
