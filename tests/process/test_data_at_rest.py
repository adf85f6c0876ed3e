"""The embedded Redis's data dir is its operator's alone: the dir 0700, every file in it 0600,
an existing dir with wider modes tightened at start-up (docs/operations.md, Data at rest).
A real redis-server writes its append-only file, an RDB dump and its log."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.embedded.server import EmbeddedRedis
from gateway.settings.tenants import default_tenant

pytestmark = pytest.mark.slow

EMAIL = "ann@example.com"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual umask, under which a plain redis-server writes 0644 files in 0755 dirs."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def modes(data_dir: Path) -> dict[str, int]:
    """The permission bits of the dir ('.') and of everything in it but the unix socket (Redis
    makes that 0700 itself, --unixsocketperm)."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        mode = path.lstat().st_mode
        if not stat.S_ISSOCK(mode):
            found[str(path.relative_to(data_dir))] = stat.S_IMODE(mode)
    return found


def owner_only(found: dict[str, int]) -> dict[str, int]:
    """What `found` should be: directories 0700, files 0600."""
    return {name: 0o700 if mode & 0o100 else 0o600 for name, mode in found.items()}


def persist(client: redis.Redis) -> None:
    """An RDB dump and an AOF rewrite, both finished: every kind of file Redis writes is there."""
    client.bgsave()
    wait_until_done(client, "rdb_bgsave_in_progress")
    client.bgrewriteaof()
    wait_until_done(client, "aof_rewrite_in_progress", "aof_rewrite_scheduled")


def wait_until_done(client: redis.Redis, *flags: str) -> None:
    deadline = time.monotonic() + 30
    time.sleep(0.05)  # BGSAVE/BGREWRITEAOF only schedule the work: let it begin
    while any(client.info("persistence")[flag] for flag in flags):
        assert time.monotonic() < deadline, f"{flags} still set after 30 s"
        time.sleep(0.05)


def test_the_dir_and_every_file_redis_writes_are_the_owners_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = EmbeddedRedis(data)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        try:
            for n in range(100):
                client.hset(f"contact:{n}", mapping={"email": f"{n}.{EMAIL}", "page": "/p/1"})
            persist(client)
            client.hset("contact:late", "email", EMAIL)  # appended to the rewritten AOF
            running = modes(data)
        finally:
            client.close()
    finally:
        server.stop()
    assert {".", "appendonly.aof", "dump.rdb", "redis.log", "gateway.lock"} <= set(running)
    assert running == owner_only(running)
    assert running["."] == 0o700
    assert running["appendonly.aof"] == 0o600
    stopped = modes(data)  # a clean stop writes the AOF and a dump again
    assert stopped == owner_only(stopped)


def test_an_existing_dir_with_wider_modes_is_tightened_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    # What an older gateway left: an AOF every local user could read, and a dir of its own.
    aof = data / "appendonly.aof"
    aof.write_bytes(b"*3\r\n$3\r\nSET\r\n$5\r\nemail\r\n$15\r\n" + EMAIL.encode() + b"\r\n")
    aof.chmod(0o644)
    (data / "old").mkdir(mode=0o755)
    (data / "old" / "notes.txt").write_text("x")
    assert modes(data)["."] == 0o755
    caplog.set_level(logging.INFO, logger="gateway.embedded")
    server = EmbeddedRedis(data)
    server.start()
    try:
        found = modes(data)
        assert found == owner_only(found)
        assert found["."] == found["old"] == 0o700
        assert found["appendonly.aof"] == found["old/notes.txt"] == 0o600
        client = redis.Redis.from_url(server.url)
        try:
            assert client.get("email") == EMAIL.encode()  # the data is still read
        finally:
            client.close()
    finally:
        server.stop()
    [record] = [r for r in caplog.records if "tightened" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert record.__dict__["data_dir"] == str(data)
    assert record.__dict__["paths"] == [".", "appendonly.aof", "old", "old/notes.txt"]
    # Once tight, a restart has nothing to tighten and says nothing.
    caplog.clear()
    server.start()
    server.stop()
    assert not [r for r in caplog.records if "tightened" in r.getMessage()]


def test_the_generated_keys_and_their_fresh_data_dir_are_the_owners_alone(
    tmp_path: Path,
) -> None:
    data = tmp_path / "fresh"
    default_tenant(data)
    assert modes(data) == {".": 0o700, "keys.json": 0o600}
