"""The objects every handler needs, made once per application: settings, API keys, metrics, each
tenant's keyspace, and (once the lifespan has started them) the store and the ingest batcher.

Starlette's way: the application keeps one `GatewayState` on `app.state.gateway`, and a handler
gets it with `gateway_state(request)`; the ingest path and the background tasks are handed it.
"""

from __future__ import annotations

import asyncio
from typing import cast

from starlette.requests import Request

from gateway.auth import KeyRing, Principal, check_origin, require_server
from gateway.clock import now_ms
from gateway.errors import ApiError, unavailable
from gateway.metrics import Metrics
from gateway.redis.arguments import RateArgs, TenantLimits
from gateway.redis.batcher import IngestBatcher
from gateway.redis.keys import TenantKeys
from gateway.redis.refusals import RefusalLog
from gateway.redis.store import Store, StoreUnavailable
from gateway.settings import Settings, Tenant


class GatewayState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyRing(settings)
        self.metrics = Metrics(settings.metrics_dir)
        self._store: Store | None = None
        self.embedded_redis = False  # set by the lifespan: the gateway runs its own Redis
        # Set by a request that queued background work (a product's fan-out, an erasure), so
        # this process starts it at once rather than at its loop's next poll (background/loop.py).
        self.fanout_queued = asyncio.Event()
        self.erasure_queued = asyncio.Event()
        self._batcher: IngestBatcher | None = None
        self._refusals: RefusalLog | None = None
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
                destinations=";".join(
                    f"{d.id}={','.join(sorted(d.types or ()))}" for d in t.destinations
                ),
                delay_ms=int(t.triggers.delay_seconds * 1000),
                cooldown_ms=int(t.triggers.cooldown_seconds * 1000),
                recent_order_ms=int(t.triggers.suppress_after_order_seconds * 1000),
                attribution_ms=int(t.triggers.attribution_window_seconds * 1000),
                watch_ms=t.triggers.watch_days * 86_400_000,
            )
            for t in settings.tenants
        }

    def connect(self, store: Store) -> None:
        """Called by the lifespan once Redis has a client."""
        self._store = store
        self._batcher = IngestBatcher(store)
        self._refusals = RefusalLog(store)

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

    @property
    def refusals(self) -> RefusalLog:
        """The refused-request log's writer (docs/dashboard.md)."""
        if self._refusals is None:
            raise RuntimeError("the gateway is not started (lifespan did not run)")
        return self._refusals

    @property
    def all_tenant_keys(self) -> list[TenantKeys]:
        return list(self._tenant_keys.values())

    def tenant_keys(self, tenant: Tenant) -> TenantKeys:
        return self._tenant_keys[tenant.id]

    def limits(self, tenant: Tenant) -> TenantLimits:
        """The tenant's arguments of ingest.lua, orders.lua and detect.lua."""
        return self._limits[tenant.id]

    async def authorize(
        self,
        authorization: str | None,
        query_string: bytes,
        origin: str | None,
        server_only: bool = True,
    ) -> tuple[Principal, list[tuple[bytes, bytes]]]:
        """The caller of any authenticated path, and the CORS headers its answer carries: 401 for
        a missing or unknown key, then `admit`."""
        principal = self.keys.authenticate(authorization, query_string)
        return principal, await self.admit(principal, origin, server_only)

    async def admit(
        self, principal: Principal, origin: str | None, server_only: bool = True
    ) -> list[tuple[bytes, bytes]]:
        """403 for an origin not allowed (or a site key where `server_only`), 429 over the key's
        rate limit (reads cost Redis work too, so every authenticated endpoint is limited);
        else the CORS headers of the answer."""
        cors = check_origin(principal, origin)
        if server_only:
            require_server(principal)
        if principal.tenant.rate_limit_per_second:  # else no second coroutine per request
            try:
                await self._check_rate(principal)
            except ApiError as error:  # a browser reads a 429 only with its CORS headers
                error.headers.update((n.decode("latin-1"), v.decode("latin-1")) for n, v in cors)
                raise
        return cors

    async def _check_rate(self, principal: Principal) -> None:
        rate = principal.tenant.rate_limit_per_second
        keys = self.tenant_keys(principal.tenant)
        try:
            bucket = RateArgs(keys.prefix, principal.key_id, rate)
            wait = await self.store.run("rate", bucket, now_ms())
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


def gateway_state(request: Request) -> GatewayState:
    return cast(GatewayState, request.app.state.gateway)


async def server_principal(request: Request) -> tuple[GatewayState, Principal]:
    """The state, and the server key calling a route (see `GatewayState.authorize`)."""
    state = gateway_state(request)
    principal, _ = await state.authorize(
        request.headers.get("authorization"),
        request.scope["query_string"],
        request.headers.get("origin"),
    )
    return state, principal
