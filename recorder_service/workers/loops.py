"""Background loops run beside the API (serve) or alone (worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from recorder_service.resources import Resources

log = logging.getLogger(__name__)

Loop = Callable[[Resources, asyncio.Event], Awaitable[None]]


def registered_loops() -> list[tuple[str, Loop]]:
    from recorder_service.workers.deletions import run_deletions, run_retention
    from recorder_service.workers.inbox_pruning import run_inbox_pruning
    from recorder_service.workers.outbox import run_outbox
    from recorder_service.workers.reconciler import run_inbox_sweep, run_reconciler

    return [
        ("outbox", run_outbox),
        ("reconciler", run_reconciler),
        ("inbox-sweep", run_inbox_sweep),
        ("deletions", run_deletions),
        ("retention", run_retention),
        ("inbox-retention", run_inbox_pruning),
    ]


@contextlib.asynccontextmanager
async def running_loops(res: Resources) -> AsyncIterator[asyncio.Event]:
    """Starts every loop; on exit sets `stop` and waits for them to finish what they hold."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_supervised(name, loop, res, stop), name=name)
        for name, loop in registered_loops()
    ]
    try:
        yield stop
    finally:
        stop.set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=20)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _supervised(name: str, loop: Loop, res: Resources, stop: asyncio.Event) -> None:
    """A crashed loop is logged and restarted after a pause; it never takes the process down."""
    while not stop.is_set():
        try:
            await loop(res, stop)
            return
        except Exception:
            log.exception("background loop %s crashed; restarting in 5 s", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)
