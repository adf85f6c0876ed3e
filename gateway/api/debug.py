"""`GET /v1/debug/events`: accepted events and refused ingest requests merged, newest first; and
`GET /v1/stats/events`: their counts per minute (docs/dashboard.md)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.clock import iso, now_ms
from gateway.errors import invalid
from gateway.http import MAX_ID_PART, json_response, limit_param, stream_order
from gateway.redis.keys import REFUSED_SECONDS, STATS_MINUTES
from gateway.state import server_principal

OUTCOMES = ("accepted", "refused")
# The outcome filter's names: `outcome` (SPEC §14) and `status`, as an operator asks for it.
OUTCOME_PARAMS = ("outcome", "status")
# A position in the merged listing: a stream id and the stream it is of. Both streams take their
# ids from Redis' clock; at one id (each stream counts its own) the accepted event comes first.
CURSOR = re.compile(r"([0-9]{1,20})-([0-9]{1,20})-([ar])")
Position = tuple[int, int, str]


def debug_cursor(request: Request) -> Position | None:
    raw = request.query_params.get("after")
    if raw is None:
        return None
    found = CURSOR.fullmatch(raw)
    if found is None or max(int(found[1]), int(found[2])) > MAX_ID_PART:
        raise invalid("after", "after must be a cursor from a previous 'next'.")
    return int(found[1]), int(found[2]), found[3]


def _position(stream_id: bytes, rank: str) -> Position:
    return *stream_order(stream_id), rank


def _newest_first(row: tuple[Position, dict[str, Any]]) -> tuple[int, int, int]:
    """The merged order: stream ids descending, at one id the accepted event first."""
    ms, seq, rank = row[0]
    return -ms, -seq, 0 if rank == "a" else 1


def _accepted(fields: dict[bytes, bytes]) -> dict[str, Any]:
    event = orjson.loads(fields[b"e"])
    return {
        "outcome": "accepted",
        "at": event.get("receivedAt"),
        "eventTypeKey": event.get("eventTypeKey"),
        "contactId": fields[b"c"].decode(),
        "event": event,
    }


def _refused(fields: dict[bytes, bytes]) -> dict[str, Any]:
    entry: dict[str, Any] = orjson.loads(fields[b"r"])
    return {"outcome": "refused", **entry}


async def debug_events(request: Request) -> Response:
    state, principal = await server_principal(request)
    keys = state.tenant_keys(principal.tenant)
    limit = limit_param(request)
    outcome = None
    for name in OUTCOME_PARAMS:
        value = request.query_params.get(name)
        if value is not None and value not in OUTCOMES:
            raise invalid(name, f"{name} must be accepted or refused.")
        if value is not None and outcome is not None and value != outcome:
            raise invalid(name, f"{name} must be the outcome's value, or left out.")
        outcome = outcome or value
    after = debug_cursor(request)
    # Older than the cursor: an accepted event at the cursor's id only if the cursor is a refusal
    # (accepted ones at an id come first), a refusal at it only if the cursor is an accepted one.
    # None: nothing is older (Redis refuses an exclusive end before 0-0).
    last_accepted: str | None = "+"
    last_refused: str | None = "+"
    if after is not None:
        ms, seq, rank = after
        last_accepted = f"({ms}-{seq}" if ms or seq else None
        last_refused = f"{ms}-{seq}" if rank == "a" else last_accepted
    rows: list[tuple[Position, dict[str, Any]]] = []
    if outcome != "refused" and last_accepted is not None:
        for stream_id, fields in await state.store.events_before(keys, last_accepted, limit):
            rows.append((_position(stream_id, "a"), _accepted(fields)))
    if outcome != "accepted" and last_refused is not None:
        since = now_ms() - REFUSED_SECONDS * 1000  # the log's 24 h
        for stream_id, fields in await state.store.refused_before(keys, last_refused, since, limit):
            rows.append((_position(stream_id, "r"), _refused(fields)))
    rows.sort(key=_newest_first)
    items = []
    for (ms, seq, rank), item in rows[:limit]:
        item["at"] = item.get("at") or iso(ms)
        item["cursor"] = f"{ms}-{seq}-{rank}"
        items.append(item)
    full = len(rows) >= limit and items
    return json_response({"items": items, "next": items[-1]["cursor"] if full else None})


def minutes_param(request: Request) -> int:
    raw = request.query_params.get("minutes", "60")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= STATS_MINUTES):
        raise invalid("minutes", f"minutes must be a whole number from 1 to {STATS_MINUTES}.")
    return int(raw)


async def event_stats(request: Request) -> Response:
    """Accepted events by type and refusals by error code, per minute, oldest first."""
    state, principal = await server_principal(request)
    keys = state.tenant_keys(principal.tenant)
    count = minutes_param(request)
    current = now_ms() // 60_000
    minutes = list(range(current - count + 1, current + 1))
    found = await state.store.minute_counts(keys, minutes)
    answer = []
    for minute, counts in zip(minutes, found, strict=True):
        accepted: dict[str, int] = {}
        refused: dict[str, int] = {}
        for name, value in counts.items():
            kind, _, what = name.decode().partition(":")
            (accepted if kind == "a" else refused)[what] = int(value)
        answer.append({"at": iso(minute * 60_000), "accepted": accepted, "refused": refused})
    return json_response({"minutes": answer})


routes = [
    Route("/v1/debug/events", debug_events),
    Route("/v1/stats/events", event_stats),
]
