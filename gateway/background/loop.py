"""What the background loops share: a sleep that a stopping process cuts short, the cap of the
backoff they use while Redis is away, and the loop over every tenant that the detector and the
product fan-out run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from gateway.redis.store import StoreUnavailable
from gateway.settings import Tenant

MAX_BACKOFF = 5.0


async def pause(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Sleep, but wake at once when the process is stopping, or when `wake` is set (a request of
    this process queued work for the loop; cleared here)."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    wake.clear()


async def every_tenant(
    stop: asyncio.Event,
    tenants: Sequence[Tenant],
    step: Callable[[Tenant], Awaitable[bool]],
    interval: float,
    log: logging.Logger,
    name: str,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `step` for each tenant in turn until `stop`: again at once while a step says more is
    due now, else after `interval` (or once `wake` is set), or after a backoff doubling up to
    MAX_BACKOFF while steps fail.

    Each tenant on its own: on a cluster, a tenant whose slot is down must not hold back the
    tenants after it; and a script error must not end the loop for good (logged, retried)."""
    backoff = interval
    while not stop.is_set():
        more = failed = False
        for tenant in tenants:
            try:
                more = await step(tenant) or more
            except StoreUnavailable as exc:
                failed = True
                log.warning(
                    "%s: redis unavailable, retrying",
                    name,
                    extra={"tenant": tenant.id, "error": str(exc)},
                )
            except Exception:
                failed = True
                log.exception("%s step failed", name, extra={"tenant": tenant.id})
        if more:
            continue  # more is due now: no pause, even if a tenant failed
        await pause(stop, backoff if failed else interval, wake)
        backoff = min(MAX_BACKOFF, backoff * 2) if failed else interval
