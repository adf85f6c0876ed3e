"""Polling with a deadline: how tests wait for something to happen, instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT = 10.0  # only a failing test waits this long


async def wait_for(
    condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, what: str = "the condition"
) -> None:
    """Poll `condition()` (a value, or an awaitable of one) until it is truthy; fail naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
