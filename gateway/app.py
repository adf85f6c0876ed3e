"""The ASGI application: the plain-ASGI ingest path in front of a Starlette app for the rest,
its routes, and the one JSON error shape every failure is answered in."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

from redis import exceptions as redis_errors
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from gateway.api import (
    carts,
    contacts,
    debug,
    deliveries,
    destinations,
    events,
    health,
    openapi,
    orders,
    privacy,
    products,
    tracker,
    trigger_stats,
    triggers,
    ui,
)
from gateway.errors import INTERNAL_ERROR, ApiError, unavailable
from gateway.http import Receive, Scope, Send, api_path
from gateway.ingest.app import PATHS, IngestApp
from gateway.lifespan import lifespan
from gateway.redis.store import UNAVAILABLE_ERRORS, StoreUnavailable, is_unavailable
from gateway.settings import PATH_KEYS, ConfigError, Settings, load_settings
from gateway.state import GatewayState

log = logging.getLogger("gateway")
# What GET /v1/events answers (Starlette answers HEAD on every GET route, as HTTP wants): the
# ingest app takes the path's other methods.
READ_METHODS = frozenset({"GET", "HEAD"})
ROUTES = [
    *health.routes,
    *openapi.routes,
    *orders.routes,  # before privacy's /v1/contacts/{identifier}, which would take /orders in
    *privacy.routes,  # /v1/contacts/{identifier}: GET (contacts.py) and DELETE, and its export
    *contacts.routes,
    *events.routes,
    *triggers.routes,
    *deliveries.routes,
    *trigger_stats.routes,
    *carts.routes,
    *products.routes,
    *tracker.routes,
    *destinations.routes,
    *debug.routes,
    *ui.routes,
]


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


def exception_handlers() -> dict[Any, Any]:
    handlers: dict[Any, Any] = {
        ApiError: api_error,
        StoreUnavailable: store_unavailable,
        HTTPException: http_error,
        redis_errors.ResponseError: redis_error,
        Exception: internal_error,
    }
    for error in UNAVAILABLE_ERRORS:
        handlers[error] = store_unavailable
    return handlers


def check_paths(settings: Settings) -> None:
    """Each first-party path set in the config (SPEC §15) must be new: neither a path the
    gateway already serves, in any spelling, nor another key's. ConfigError names the key."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings) if f.name in PATH_KEYS}
    taken: dict[str, str] = {}
    for name in PATH_KEYS:
        path = getattr(settings, name)
        if path == defaults[name]:
            continue
        where = f"gateway.{name}"
        canonical = api_path(path, path.encode())
        if canonical != path:
            raise ConfigError(f"{where}: {path!r} is a spelling of {canonical!r}: use a new path")
        scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
        if path in PATHS or any(route.matches(scope)[0] != Match.NONE for route in ROUTES):
            raise ConfigError(f"{where}: {path!r} is a path the gateway already serves")
        if path in taken:
            raise ConfigError(f"{where}: {path!r} is also gateway.{taken[path]}")
        taken[path] = name


def routes(settings: Settings) -> list[Route]:
    """ROUTES, and the tracker under its first-party path too when one is set."""
    if settings.tracker_path == tracker.TRACKER_PATH:
        return list(ROUTES)
    return [*ROUTES, Route(settings.tracker_path, tracker.tracker_js)]


class RouteLabels:
    """The route template a path falls under, as the latency histogram's label (a few values,
    whatever paths clients send): `/v1/contacts/{identifier}`, not each contact's."""

    def __init__(self, templates: list[str]) -> None:
        self.exact = {t for t in templates if "{" not in t}
        # In route order, each template as a pattern (a parameter: any characters, as `text`
        # takes them): `/v1/contacts/{identifier}/export` before `/v1/contacts/{identifier}`.
        self.patterns = [
            (
                re.compile(re.sub(r"\\\{\w+(?::\w+)?\\\}", ".+", re.escape(t)), re.S),
                re.sub(r":\w+}", "}", t),
            )
            for t in templates
            if "{" in t
        ]

    def __call__(self, path: str) -> str:
        if path in self.exact:
            return path
        return next((label for rx, label in self.patterns if rx.fullmatch(path)), "other")


class GatewayApp:
    """The application uvicorn serves. `ingest` is what gateway/ingest/protocol.py answers the
    ingest paths with directly; `state` holds what every handler shares."""

    def __init__(self, settings: Settings) -> None:
        check_paths(settings)
        tracker.tracker_asset(settings.collect_batch_path)  # fails at start-up, not per request
        self.state = GatewayState(settings)
        self.ingest = IngestApp(self.state)
        self.ingest_paths = self.ingest.paths
        served = routes(settings)
        self.rest = Starlette(
            routes=served,
            lifespan=self._lifespan,
            exception_handlers=exception_handlers(),
        )
        self.rest.state.gateway = self.state
        self.route_of = RouteLabels([route.path for route in served])
        self.latency = self.state.metrics.request_latency

    def _lifespan(self, app: Starlette) -> AbstractAsyncContextManager[None]:
        return lifespan(self.state)

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Start-up and shutdown, for a caller that serves the app without an ASGI server."""
        return lifespan(self.state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.rest(scope, receive, send)
            return
        path = scope["path"] = api_path(scope["path"], scope.get("raw_path") or b"/")
        # GET /v1/events reads (a Starlette route); the other methods of it, every method of the
        # other ingest paths and aliases, are the ingest app's.
        if path in self.ingest_paths and (
            scope["method"] not in READ_METHODS or path != "/v1/events"
        ):
            await self.ingest(scope, receive, send)  # it observes its own latency
        else:
            started = time.perf_counter()
            try:
                await self.rest(scope, receive, send)
            finally:
                self.latency.observe(time.perf_counter() - started, self.route_of(path))


def create_app(settings: Settings | None = None) -> GatewayApp:
    return GatewayApp(settings or load_settings())
