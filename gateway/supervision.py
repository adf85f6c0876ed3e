"""Worker processes of `gateway serve --workers N` end when their supervisor is gone.

uvicorn's supervisor (the `gateway serve` process) starts the workers as child processes. When the
supervisor is killed outright (`kill -9`, the OOM killer) the workers would carry on as orphans,
still holding the listening socket, so a restarted gateway could not bind its port ("address
already in use"). Each worker therefore watches its parent and, once reparented, shuts itself down
the ordinary way: SIGTERM, so in-flight requests finish and acknowledged events are flushed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

SUPERVISOR_ENV = "GATEWAY_SUPERVISOR_PID"  # set by the CLI for its workers only
log = logging.getLogger("gateway")


async def watch_supervisor(interval: float = 0.5) -> None:
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor or os.getppid() != int(supervisor):
        return  # a single process (no --workers), or started some other way: nothing to watch
    while os.getppid() == int(supervisor):
        await asyncio.sleep(interval)
    log.warning("the supervisor process is gone; shutting this worker down")
    os.kill(os.getpid(), signal.SIGTERM)
