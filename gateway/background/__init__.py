"""The tasks every gateway process runs beside its requests: the visit detector, which emits
triggers, the product fan-out, which emits priceDrop and backInStock, the webhook deliverer,
which sends them, the eraser (docs/privacy.md) and the destinations' forwarder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from gateway.background.destinations import destination_deliverer
from gateway.background.detector import Detector
from gateway.background.eraser import Eraser
from gateway.background.fanout import FanOut
from gateway.background.webhooks import webhook_deliverer
from gateway.redis.store import StoreUnavailable
from gateway.state import GatewayState

log = logging.getLogger("gateway")


@dataclass
class Background:
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]


async def start_background(state: GatewayState) -> Background:
    deliverer, forwarder = webhook_deliverer(state), destination_deliverer(state)
    with contextlib.suppress(StoreUnavailable):
        await deliverer.prepare()  # before any trigger can exist; else retried by run()
        await forwarder.prepare()
    stop = asyncio.Event()
    return Background(
        stop,
        [
            asyncio.create_task(Detector(state).run(stop), name="detector"),
            asyncio.create_task(FanOut(state).run(stop), name="fanout"),
            asyncio.create_task(deliverer.run(stop), name="webhooks"),
            asyncio.create_task(Eraser(state).run(stop), name="eraser"),
            asyncio.create_task(forwarder.run(stop), name="destinations"),
        ],
    )


async def stop_background(background: Background) -> None:
    """Let the loops finish their current step (no Redis call is cut in half), then end."""
    background.stop.set()
    for result in await asyncio.gather(*background.tasks, return_exceptions=True):
        if isinstance(result, BaseException):
            log.error("background task failed", extra={"error": repr(result)})
