"""Probes and metrics: `GET /healthz` (the process answers), `GET /readyz` (Redis answers too),
`GET /metrics` (Prometheus text; with `metrics_token` set, only for `Authorization: Bearer` it)."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ApiError, unavailable
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


def _digest(text: str, encoding: str) -> bytes:
    return hashlib.sha256(text.encode(encoding, "surrogateescape")).digest()


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether the header is `Bearer <token>`: compared in constant time (as digests, so that
    neither its length nor how much of it matched shows in the time taken)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    sent = credentials.strip() if scheme.lower() == "bearer" else ""
    # Starlette reads header bytes as latin-1: their bytes again, as the token's UTF-8.
    return hmac.compare_digest(_digest(sent, "latin-1"), _digest(token, "utf-8")) and bool(sent)


async def metrics(request: Request) -> Response:
    state = gateway_state(request)
    token = state.settings.metrics_token
    if token is not None and not bearer_matches(request.headers.get("authorization"), token):
        raise ApiError(
            401,
            "unauthorized",
            "/metrics needs Authorization: Bearer with the metrics_token.",
            "authorization",
            headers={"www-authenticate": 'Bearer realm="metrics"'},
        )
    body = state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics),
]
