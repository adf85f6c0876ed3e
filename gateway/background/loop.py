"""What the background loops share: a sleep that a stopping process cuts short, and the cap of
the backoff they use while Redis is away."""

from __future__ import annotations

import asyncio
import contextlib

MAX_BACKOFF = 5.0


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the process is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
