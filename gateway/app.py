"""The ASGI application: the plain-ASGI ingest path in front of a Starlette app for the rest."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from redis import exceptions as redis_errors
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import contacts, openapi, tracker, triggers
from gateway.api.orders import OrdersApi, rfm
from gateway.auth import KeyRing, Principal, check_origin, require_server
from gateway.clock import now_ms
from gateway.embedded.server import EmbeddedRedis
from gateway.embedded.watchdog import RedisWatchdog
from gateway.errors import INTERNAL_ERROR, ApiError, unavailable
from gateway.ingest.app import PATHS, IngestApp, Receive, Scope, Send
from gateway.metrics import Metrics
from gateway.redis.arguments import RateArgs, TenantLimits
from gateway.redis.batcher import IngestBatcher
from gateway.redis.keys import TenantKeys
from gateway.redis.store import (
    UNAVAILABLE_ERRORS,
    Store,
    StoreUnavailable,
    connect,
    is_unavailable,
)
from gateway.settings import Settings, Tenant, load_settings
from gateway.supervision import watch_supervisor

log = logging.getLogger("gateway")
# What GET /v1/events answers (Starlette answers HEAD on every GET route, as HTTP wants): the
# ingest app takes the path's other methods.
READ_METHODS = frozenset({"GET", "HEAD"})


class AnyText(Convertor[str]):
    """A path parameter of any characters. Starlette's `path` is `.*`, whose `.` stops at a line
    break, and the route's `$` lets a trailing one go unmatched: `/v1/contacts/trail%0A` read the
    contact `trail`, and an identifier with a line break inside it was not found at all."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyText())


class Gateway:
    """What the ingest path and the routes share: settings, keys, the store, metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyRing(settings)
        self.metrics = Metrics()
        self.embedded: EmbeddedRedis | None = None
        self._store: Store | None = None
        self._batcher: IngestBatcher | None = None
        self._tenant_keys = {t.id: TenantKeys.for_tenant(t.id) for t in settings.tenants}
        self._limits = {
            t.id: TenantLimits(
                prefix=self._tenant_keys[t.id].prefix,
                contact_ttl=settings.contact_ttl_seconds,
                visit_timeout_ms=int(t.visit_timeout_seconds * 1000),
                dedup_window=settings.dedup_window_seconds,
                stream_maxlen=settings.events_stream_maxlen,
                recent_views=settings.recent_views,
                contact_events=settings.contact_events,
                cart_ttl=settings.cart_ttl_seconds,
                purchase_window_ms=int(t.cart_purchase_window_seconds * 1000),
            )
            for t in settings.tenants
        }

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the gateway is not started (lifespan did not run)")
        return self._store

    @property
    def batcher(self) -> IngestBatcher:
        if self._batcher is None:
            raise RuntimeError("the gateway is not started (lifespan did not run)")
        return self._batcher

    def tenant_keys(self, tenant: Tenant) -> TenantKeys:
        return self._tenant_keys[tenant.id]

    def limits(self, tenant: Tenant) -> TenantLimits:
        """The tenant's arguments of ingest.lua and orders.lua."""
        return self._limits[tenant.id]

    async def check_rate(self, principal: Principal) -> None:
        rate = principal.tenant.rate_limit_per_second
        if not rate:
            return
        keys = self.tenant_keys(principal.tenant)
        try:
            wait = await self.store.run(
                "rate", RateArgs(keys.prefix, principal.key_id, rate), now_ms()
            )
        except StoreUnavailable:
            raise unavailable() from None
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                "Too many requests for this key; slow down.",
                "authorization",
                headers={"retry-after": str(max(1, -(-wait // 1000)))},
            )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        url = self.settings.redis_url
        redis_watchdog = None
        if url is None:
            self.embedded = EmbeddedRedis(self.settings.data_dir)
            self.embedded.start()
            redis_watchdog = RedisWatchdog(self.embedded).start()  # as under `gateway serve`
            url = self.embedded.url
            log.info("embedded redis started", extra={"data_dir": str(self.settings.data_dir)})
        self._store = Store(connect(url))
        self._batcher = IngestBatcher(self._store)
        if not await self._store.ping():
            log.warning("redis is not answering yet; /readyz reports 503 until it does")
        # What is allocated by now (modules, settings, clients) lives as long as the process: the
        # cyclic collector need not re-scan it in every full collection (measured: ~30% of the
        # time spent validating a batch went to those scans). Requests allocate thousands of
        # containers that live until Redis answers, and hardly ever a cycle (refcounting frees
        # them): collecting after 100,000 allocations rather than 700 cut ~9% of the CPU per batch
        # request under wrk (1,654 -> 1,497 µs, 3 runs each).
        gc.freeze()
        gc.set_threshold(100_000, 50, 1000)
        background = await triggers.start_background(self)
        watchdog = asyncio.get_running_loop().create_task(watch_supervisor())
        try:
            yield
        finally:
            watchdog.cancel()
            await triggers.stop_background(background)
            await self._batcher.drain()
            await self._store.close()
            if self.embedded is not None:
                self.embedded.stop()
            if redis_watchdog is not None:
                redis_watchdog.join()

    # ---- routes -------------------------------------------------------------------------

    async def principal(self, request: Request) -> Principal:
        """The server key calling a route, once its request counts against the key's rate limit
        (429 over it): reads cost Redis work too, so every authenticated endpoint is limited."""
        principal = self.keys.authenticate(
            request.headers.get("authorization"), request.scope["query_string"]
        )
        check_origin(principal, request.headers.get("origin"))
        require_server(principal)
        await self.check_rate(principal)
        return principal

    async def healthz(self, request: Request) -> Response:
        return contacts.json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if await self.store.ping():
            return contacts.json_response({"status": "ready"})
        raise unavailable()

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def get_contact(self, request: Request) -> Response:
        principal = await self.principal(request)
        keys = self.tenant_keys(principal.tenant)
        contact_id = await contacts.find_contact(
            self.store, keys, request.path_params["identifier"]
        )
        if contact_id is None:
            raise contacts.not_found("contact")
        body = await contacts.read_contact(self.store, keys, contact_id)
        body["orders"] = await rfm(self.store, keys, contact_id)
        return contacts.json_response(body)

    async def list_events(self, request: Request) -> Response:
        principal = await self.principal(request)
        keys = self.tenant_keys(principal.tenant)
        limit = contacts.limit_param(request)
        event_type = request.query_params.get("type") or None
        identifier = request.query_params.get("contact")
        if identifier is None:
            found = await contacts.tenant_events(self.store, keys, event_type, limit)
        else:
            contact_id = await contacts.find_contact(self.store, keys, identifier)
            if contact_id is None:
                raise contacts.not_found("contact")
            found = await contacts.contact_events(self.store, keys, contact_id, event_type, limit)
        return contacts.json_response({"events": found})

    async def list_triggers(self, request: Request) -> Response:
        return await triggers.list_triggers(self, request)

    async def dead_letters(self, request: Request) -> Response:
        return await triggers.dead_letters(self, request)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return Response(exc.json(), exc.status, headers=exc.headers, media_type="application/json")


async def http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own answers (no such route, e.g. a path with a newline; wrong method) in the
    # API's one JSON error shape too.
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    error = ApiError(exc.status_code, code, exc.detail, None, headers=dict(exc.headers or {}))
    return await api_error(request, error)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    return await api_error(request, unavailable())


async def redis_error(request: Request, exc: Exception) -> Response:
    """A Redis error reply: refused for now (memory full, a failing disk), or an internal error.
    (Reads run in MULTI, which Redis refuses as a whole while its memory is full.)"""
    if is_unavailable(exc):
        return await store_unavailable(request, exc)
    log.error("redis error", exc_info=exc)
    return await internal_error(request, exc)


async def internal_error(request: Request, exc: Exception) -> Response:
    # Starlette answers with this, then re-raises, so the traceback is still logged.
    return await api_error(request, INTERNAL_ERROR)


class RouteLabels:
    """The route template a path falls under, as the latency histogram's label (a few values,
    whatever paths clients send): `/v1/contacts/{identifier}`, not each contact's."""

    def __init__(self, templates: list[str]) -> None:
        self.exact = {t for t in templates if "{" not in t}
        self.prefixed = [
            (t.split("{", 1)[0], re.sub(r":\w+}", "}", t)) for t in templates if "{" in t
        ]

    def __call__(self, path: str) -> str:
        if path in self.exact:
            return path
        return next((label for prefix, label in self.prefixed if path.startswith(prefix)), "other")


def create_app(settings: Settings | None = None) -> Any:
    gateway = Gateway(settings or load_settings())
    orders = OrdersApi(gateway)
    routes = [
        Route("/healthz", gateway.healthz),
        Route("/readyz", gateway.readyz),
        Route("/metrics", gateway.metrics_endpoint),
        Route("/openapi.json", openapi.endpoint),
        Route("/v1/contacts/{identifier:text}", gateway.get_contact),
        Route("/v1/events", gateway.list_events),
        Route("/v1/triggers", gateway.list_triggers),
        Route("/v1/webhooks/dead", gateway.dead_letters),
        Route("/v1/orders", orders.post_orders, methods=["POST"]),
        Route("/v1/orders/{externalOrderId:text}", orders.get_order),
        Route("/v1/carts/{recycleStateId:text}", orders.get_cart),
        Route("/js/tracker.js", tracker.tracker_js),
    ]
    handlers: dict[Any, Any] = {
        ApiError: api_error,
        StoreUnavailable: store_unavailable,
        HTTPException: http_error,
        redis_errors.ResponseError: redis_error,
        Exception: internal_error,
    }
    for error in UNAVAILABLE_ERRORS:
        handlers[error] = store_unavailable
    rest = Starlette(routes=routes, lifespan=gateway.lifespan, exception_handlers=handlers)
    ingest = IngestApp(gateway)
    route_of = RouteLabels([route.path for route in routes])
    latency = gateway.metrics.request_latency

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await rest(scope, receive, send)
        elif scope["path"] in PATHS and (
            scope["method"] not in READ_METHODS or scope["path"] == "/v1/event"
        ):
            await ingest(scope, receive, send)  # it observes its own latency
        else:
            started = time.perf_counter()
            try:
                await rest(scope, receive, send)
            finally:
                latency.observe(time.perf_counter() - started, route_of(scope["path"]))

    app.gateway = gateway  # type: ignore[attr-defined]
    app.ingest = ingest  # type: ignore[attr-defined]
    return app
