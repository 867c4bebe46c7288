"""The inbox-retention loop: once an hour, by one replica at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from recorder_service.errors import LockWaitTimeout, RecorderError
from recorder_service.resources import Resources
from recorder_service.services.inbox_pruning import prune_inbox

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


async def prune_once(res: Resources) -> int:
    cutoff = res.now() - timedelta(days=res.settings.inbox_retention_days)
    async with res.coordinator.hold("inbox-prune", ttl_s=PRUNE_INTERVAL_S, wait_s=0.01):
        deleted = await prune_inbox(res.db, received_before=cutoff)
    if deleted:
        log.info("inbox retention: %d applied or ignored events older than %s deleted", deleted, cutoff)
    return deleted


async def run_inbox_pruning(res: Resources, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await prune_once(res)
        except LockWaitTimeout:
            pass  # another replica is pruning
        except RecorderError as exc:
            log.warning("inbox retention failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PRUNE_INTERVAL_S)
