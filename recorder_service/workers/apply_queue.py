"""ApplyQueue: where stored webhook events are applied, in the request or just after it.

A webhook is answered once its event is stored; applying it (matching, recording update,
callback) costs several statements more. A lone delivery, Daily's usual pattern, is applied
in its own request, so its answer carries the applied state and whoever reads the meeting next
sees it. When other deliveries are in flight or events are already waiting, the event is
queued instead and applied by a few tasks beside the server: a burst is acknowledged at the
speed of the store, not of the apply.

Queued applies give way to deliveries: a worker waits until no webhook request has been in
flight for QUIET_S, but never longer than YIELD_S per event, so a sustained burst still makes
progress (≥ WORKERS / YIELD_S events a second) while acknowledgements keep their speed.

Nothing here is the only copy: the event is already a `pending` inbox row. A full queue drops
the id, and a stop leaves queued ids unapplied; the inbox sweep applies those rows later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

log = logging.getLogger(__name__)

# Applies the ids it is given (one transaction for several when it can).
Apply = Callable[[list[str]], Awaitable[object]]

CAPACITY = 10_000
WORKERS = 2
# Queued events applied together, in one transaction, when that many are waiting.
BATCH = 16
QUIET_S = 0.02
YIELD_S = 1.0
DROP_REPORT_S = 30.0


class ApplyQueue:
    def __init__(self, *, capacity: int = CAPACITY, workers: int = WORKERS, yield_s: float = YIELD_S) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=capacity)
        self._workers = workers
        self._yield_s = yield_s
        self._last_delivery = 0.0  # monotonic time the last delivery ended
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0  # webhook requests between arrival and answer
        self._busy = 0  # queued events being applied right now
        self.dropped = 0  # ids left to the sweep because the queue was full
        self._drops_reported_at = -DROP_REPORT_S

    @contextlib.contextmanager
    def delivery(self) -> Iterator[None]:
        """Wraps one webhook request, so the others know it is in flight."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._last_delivery = time.monotonic()

    def should_apply_inline(self) -> bool:
        """True for a lone delivery: no other request in flight, nothing queued or applying."""
        return self.running and self._in_flight <= 1 and self._busy == 0 and self._queue.empty()

    def submit(self, event_id: str) -> bool:
        """Queues an event for applying; False when it is left to the sweep."""
        if not self.running:
            return False
        try:
            self._queue.put_nowait(event_id)
        except asyncio.QueueFull:
            self.dropped += 1
            self._report_drops()
            return False
        return True

    def _report_drops(self) -> None:
        """One line per DROP_REPORT_S at most: a burst must not turn into a burst of logs."""
        now = time.monotonic()
        if now - self._drops_reported_at < DROP_REPORT_S:
            return
        log.warning(
            "apply queue full (%d events): %d events left for the inbox sweep so far",
            self._queue.maxsize,
            self.dropped,
        )
        self._drops_reported_at = now

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + self._busy

    def start(self, apply: Apply) -> None:
        self._tasks = [
            asyncio.create_task(self._work(apply), name=f"webhook-apply-{n}") for n in range(self._workers)
        ]

    async def _work(self, apply: Apply) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy += len(batch)
            try:
                await self._give_way()
                await apply(batch)
            except Exception:
                log.exception(
                    "applying queued events failed; the sweep retries them", extra={"event_ids": batch}
                )
            finally:
                self._busy -= len(batch)
                for _ in batch:
                    self._queue.task_done()

    async def _give_way(self) -> None:
        deadline = time.monotonic() + self._yield_s
        while time.monotonic() < deadline:
            if not self._in_flight and time.monotonic() - self._last_delivery >= QUIET_S:
                return
            await asyncio.sleep(QUIET_S)

    async def close(self, *, timeout_s: float = 10.0) -> None:
        """Applies what is queued for up to `timeout_s`, then stops; the rest waits for the sweep."""
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=timeout_s)
        left = self.backlog
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if left:
            log.warning("stopped with %d webhook events unapplied; the inbox sweep applies them", left)
