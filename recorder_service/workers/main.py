"""`recorder-service worker`: the background loops alone, stopped cleanly by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from recorder_service.resources import freeze_startup_heap, open_resources
from recorder_service.settings import Settings
from recorder_service.workers.loops import running_loops

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> int:
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.set)
    async with open_resources(settings) as res, running_loops(res):
        freeze_startup_heap()
        log.info("worker running")
        await shutdown.wait()
        log.info("worker stopping")
    return 0
