"""The embedded Redis kept alive: the process that owns it starts it again when it dies.

Without this a server that died (kill -9, the OOM killer) stayed dead: every request answered 503
while /healthz said 200, so nothing restarted anything. The restart replays the append-only file
on the same data dir: Redis hands each write to the kernel before it replies, so a crash of the
server alone loses nothing acknowledged. A server that keeps dying, or cannot start at all, is
retried further and further apart rather than in a tight loop.
"""

from __future__ import annotations

import logging
import threading
import time

from gateway.embedded.server import EmbeddedRedis, EmbeddedRedisError, describe_exit

log = logging.getLogger("gateway.embedded")
# A server that ran this long before it died is restarted at once; one that dies sooner after
# (re)starting waits the growing restart delay first.
STABLE_SECONDS = 30.0


class RedisWatchdog:
    """A thread of the owning process that restarts `server` whenever it exits, until the server
    is stopped (`EmbeddedRedis.stop`); `backoff` is the (first, longest) pause between restarts."""

    def __init__(
        self, server: EmbeddedRedis, backoff: tuple[float, float] = (0.5, 30.0), poll: float = 0.1
    ) -> None:
        self.server = server
        self.backoff = backoff
        self.poll = poll
        self.ready_at = time.monotonic()  # when the server last came up
        self.delay = 0.0  # the pause before the next restart
        self.thread = threading.Thread(target=self._run, name="embedded-redis-watch", daemon=True)

    def start(self) -> RedisWatchdog:
        self.thread.start()
        return self

    def join(self) -> None:
        """After `EmbeddedRedis.stop`: prompt, as the thread checks for it between every step."""
        if self.thread.is_alive():
            self.thread.join()

    def _run(self) -> None:
        server = self.server
        while not server.stopping.wait(self.poll):
            process = server.exited()
            if process is None:
                continue
            code = process.returncode
            log.error(
                f"embedded redis-server exited ({describe_exit(code)}); restarting it",
                extra={"pid": process.pid, "exit_code": code, "data_dir": str(server.data_dir)},
            )
            try:
                self._restart()
            except Exception:
                # Not expected; but a watchdog that died would leave the server dead for good.
                # The next round sees it down again and retries, after the (grown) delay.
                log.exception("embedded redis-server restart failed")

    def _restart(self) -> None:
        server = self.server
        down_since = time.monotonic()
        first, longest = self.backoff
        if down_since - self.ready_at >= STABLE_SECONDS:
            self.delay = 0.0  # it had been up a while: a one-off crash, restart at once
        while True:
            if self.delay and server.stopping.wait(self.delay):
                return
            # Doubled whatever this attempt brings: a server that dies again soon after coming
            # back waits longer each time, just as one that cannot start at all.
            self.delay = min(longest, max(first, self.delay * 2))
            try:
                process = server.respawn()
            except (EmbeddedRedisError, OSError) as exc:  # OSError: the binary would not run
                if server.stopping.is_set():
                    return
                log.error(
                    "embedded redis-server could not be restarted",
                    extra={
                        "error": str(exc),
                        "exit_code": getattr(exc, "exit_code", None),
                        "retry_in": self.delay,
                        "data_dir": str(server.data_dir),
                    },
                )
                continue
            if process is None:  # stopped meanwhile
                return
            self.ready_at = time.monotonic()
            log.info(
                "embedded redis-server is back",
                extra={
                    "pid": process.pid,
                    "down_seconds": round(self.ready_at - down_since, 2),
                    "data_dir": str(server.data_dir),
                },
            )
            return
