"""The app served as `gateway serve` serves it, in a thread of the test process: uvicorn with the
project's options (gateway/cli.py `uvicorn_options`: httptools with the ingest paths' short way,
gateway/ingest/protocol.py) on a free port of 127.0.0.1, on the tests' Redis.

`ServedApps` keeps one such server per configuration for the whole session, each configured with
a pool of fresh tenants: a test takes two unused ones, as `make_api` gives an in-process app two
new tenants, so tests sharing a server still never see each other's data.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from gateway.app import create_app
from gateway.cli import parser, uvicorn_options
from gateway.settings import Settings
from gateway.state import GatewayState
from tests.support.gateways import build_settings, free_port, tenant_config, unique

# Tenant pairs per served app; another app is started when they are used up. Every tenant of a
# served app is polled by its background loops (the detector every 50 ms with the tests' short
# visit timeouts) for the rest of the session, used or not, and most configurations serve only a
# few tests: a pool of 40 left thousands of idle tenants whose polling slowed the whole suite.
POOL = 8


class ServedApp:
    """The gateway app under uvicorn in a thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        options = uvicorn_options(parser().parse_args(["serve", "--port", str(self.port)]))
        # The app object itself rather than its factory's import string; uvicorn's own logging
        # setup is left out, as it would reconfigure the test process's logging.
        options.update(app=self.app, factory=False, log_config=None)
        self.loop_name = options.pop("loop")
        self.config = uvicorn.Config(**options)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self._run, name=f"served-{self.port}", daemon=True)
        self.failure: BaseException | None = None

    @property
    def gateway(self) -> GatewayState:
        gateway: GatewayState = self.app.state
        return gateway

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        # Built here, not by uvicorn: older uvicorn sets a process-wide event loop policy.
        loop: asyncio.AbstractEventLoop
        if self.loop_name == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.server.serve())
        except BaseException as failure:  # reported by start() or stop()
            self.failure = failure
        finally:
            loop.close()

    def start(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the served app did not start: {self.failure!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the served app did not start within 30 s")
            time.sleep(0.01)
        # What makes it "served": the protocol answers the ingest paths itself, as under serve.
        assert getattr(self.config.loaded_app, "ingest", None) is self.app.ingest
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the served app did not stop within 30 s"
        if self.failure is not None:
            raise self.failure


class ServedApps:
    """Served apps by configuration, each with a pool of tenant pairs handed out once each."""

    def __init__(self, redis_url: str, data_dir: Path) -> None:
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.pools: dict[bytes, tuple[ServedApp, list[tuple[str, str]]]] = {}
        self.apps: list[ServedApp] = []

    def tenants(
        self, gateway: dict[str, Any], tenant: dict[str, Any]
    ) -> tuple[ServedApp, str, str]:
        """A running app configured with `gateway` settings and two tenants nobody used yet,
        configured with `tenant` settings."""
        key = orjson.dumps([gateway, tenant], option=orjson.OPT_SORT_KEYS)
        if key not in self.pools or not self.pools[key][1]:
            pairs = [(unique("a"), unique("b")) for _ in range(POOL)]
            tenants = [tenant_config(t, **tenant) for pair in pairs for t in pair]
            settings = build_settings(self.redis_url, self.data_dir, tenants, **gateway)
            app = ServedApp(settings).start()
            self.apps.append(app)
            self.pools[key] = (app, pairs)
        app, pairs = self.pools[key]
        a, b = pairs.pop()
        return app, a, b

    def stop(self) -> None:
        for app in self.apps:
            app.stop()
