"""`GET /v1/triggers/stats?from=&to=` (docs/triggers.md, Stats): what the tenant's triggers did
per type over a range of UTC days, summed from the per-day hashes the scripts count into
(emitted, suppressed by reason, webhook deliveries and dead letters, attributed orders and their
revenue)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import invalid
from gateway.http import json_bytes
from gateway.redis.keys import TRIGGER_STATS_TTL
from gateway.state import server_principal

MAX_DAYS = TRIGGER_STATS_TTL // 86_400  # a day's figures are kept this long: 400
DEFAULT_DAYS = 30
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
COUNTS = ("emitted", "delivered", "failed", "converted")


def day_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if not DAY.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, f"{name} must be a date, YYYY-MM-DD (UTC).") from None


def day_range(request: Request) -> tuple[date, date]:
    """from and to, inclusive: the last 30 days by default; 400 for a bad or too long range."""
    first, last = day_param(request, "from"), day_param(request, "to")
    if last is None:
        last = today() if first is None else max(first, today())
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise invalid("from", "from must not be after to.")
    if (last - first).days + 1 > MAX_DAYS:
        raise invalid(
            "from", f"from and to span at most {MAX_DAYS} days (as long as they are kept)."
        )
    return first, last


def today() -> date:
    return datetime.now(UTC).date()


def summed(days: list[dict[bytes, bytes]]) -> dict[str, dict[str, Any]]:
    """The day hashes' `<type>|<figure>[|<reason or currency>]` fields, summed per type."""
    types: dict[str, dict[str, Any]] = {}
    for figures in days:
        for name, value in figures.items():
            trigger_type, _, rest = name.decode().partition("|")
            figure, _, detail = rest.partition("|")
            entry = types.setdefault(
                trigger_type, {**dict.fromkeys(COUNTS, 0), "suppressed": {}, "revenue": {}}
            )
            if figure in COUNTS:
                entry[figure] += int(float(value))
            elif figure == "suppressed":
                entry["suppressed"][detail] = entry["suppressed"].get(detail, 0) + int(value)
            elif figure == "revenue":
                entry["revenue"][detail] = entry["revenue"].get(detail, 0.0) + float(value)
    for entry in types.values():
        # a cancelled order leaves its revenue at 0 (give or take a float's last bit)
        entry["revenue"] = {c: round(v, 6) for c, v in entry["revenue"].items() if abs(v) > 1e-9}
    return types


async def trigger_stats(request: Request) -> Response:
    gateway, principal = await server_principal(request)
    first, last = day_range(request)
    keys = gateway.tenant_keys(principal.tenant)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    figures = await gateway.store.trigger_stats(keys, days)
    body = {"from": first.isoformat(), "to": last.isoformat(), "types": summed(figures)}
    return json_bytes(orjson.dumps(body))


routes = [Route("/v1/triggers/stats", trigger_stats)]
