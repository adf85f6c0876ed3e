"""How tests get a gateway: an in-process app bound to a tenant (`Api`), or a real
`python -m gateway serve` process (`start_gateway`), with the names, ports and configs for either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.redis.keys import TenantKeys
from gateway.settings import Settings, parse_config
from gateway.state import GatewayState

ROOT = Path(__file__).resolve().parents[2]  # the repository


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


def build_settings(
    redis_url: str, data_dir: Path, tenants: list[dict[str, Any]], **gateway: Any
) -> Settings:
    raw: dict[str, Any] = {"tenants": tenants}
    if gateway:
        raw["gateway"] = gateway
    return parse_config(raw, data_dir, redis_url)


@dataclass
class Api:
    """An HTTP client bound to one tenant of a running gateway."""

    http: httpx.AsyncClient
    gateway: GatewayState
    tenant_id: str
    server_key: str
    site_key: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> TenantKeys:
        """The tenant's Redis keys, as the gateway names them (gateway/redis/keys.py)."""
        return TenantKeys.for_tenant(self.tenant_id)

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


def write_config(
    path: Path, tenants: list[str], webhooks: Sequence[dict[str, object]] = (), **tenant: object
) -> Path:
    """A TOML config with one tenant per id, keys `sk_<id>` / `pk_<id>`, each with `webhooks`
    (as [[tenants.webhooks]] tables) and the other settings given."""
    lines: list[str] = []
    for tenant_id in tenants:
        lines += [
            "[[tenants]]",
            f'id = "{tenant_id}"',
            f'server_keys = ["sk_{tenant_id}"]',
            f'site_keys = ["pk_{tenant_id}"]',
            'allowed_origins = ["https://shop.example"]',
        ]
        lines += [f"{name} = {orjson.dumps(value).decode()}" for name, value in tenant.items()]
        for hook in webhooks:
            lines.append("[[tenants.webhooks]]")
            lines += [f"{name} = {orjson.dumps(value).decode()}" for name, value in hook.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


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


@contextlib.contextmanager
def serving(
    config: Path, redis_url: str, data_dir: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`gateway serve --config <config>` on a free port, killed at the end: (port, process)."""
    port = free_port()
    env = {"REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(data_dir)}
    process = start_gateway(port, env, "--config", str(config))
    try:
        yield port, process
    finally:
        process.kill()
        process.wait()


def gateway_command(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway <args>` run to its end (a refused start-up, --help), its output kept."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )


def stop_gateway(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager stops it; its exit status."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)
