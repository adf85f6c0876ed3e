"""Probes and metrics: `GET /healthz` (the process answers), `GET /readyz` (Redis answers too),
`GET /metrics` (Prometheus text)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import unavailable
from gateway.http import json_response
from gateway.state import gateway_state


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready while Redis answers for every configured tenant (on a cluster, the node serving
    each tenant's slot)."""
    state = gateway_state(request)
    if await state.store.serves(state.all_tenant_keys):
        return json_response({"status": "ready"})
    raise unavailable()


async def metrics(request: Request) -> Response:
    body = gateway_state(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics),
]
