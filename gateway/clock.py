"""Wall-clock time as the gateway records it: integer milliseconds, shown as ISO-8601 UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# Requests arriving in the same millisecond share one formatting (ingest formats every receive).
@lru_cache(maxsize=64)
def iso(ms: int | float) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=64)
def iso_ms(text: str) -> int:
    """The milliseconds an `iso` text stands for (its inverse)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def stored_iso(ms: bytes | None) -> str | None:
    """A millisecond timestamp read from Redis, as ISO-8601; None when it was never written."""
    return iso(int(ms)) if ms else None
