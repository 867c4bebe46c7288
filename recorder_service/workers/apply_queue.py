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
the id, and a stop leaves queued ids unapplied; the inbox sweep applies those rows later. So that
a burst larger than the queue does not wait for the sweep's period, the queue refills itself once
it has drained after dropping ids: it reads up to its capacity of pending ids from the inbox and
queues them (again, while more remain). An id applied twice is harmless: the apply locks the row
and skips an event already applied."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

log = logging.getLogger(__name__)

# Applies the ids it is given (one transaction for several when it can).
Apply = Callable[[list[str]], Awaitable[object]]
# Up to `limit` ids of events stored and still pending, oldest first.
Refill = Callable[[int], Awaitable[Sequence[str]]]

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
        self.dropped = 0  # ids dropped because the queue was full (refilled later, or swept)
        self.refills = 0  # times the queue read pending ids back from the inbox
        self._overflowed = False  # ids were dropped since the last refill
        self._refilling = False
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
            self._overflowed = True
            self._report_drops()
            return False
        return True

    def _report_drops(self) -> None:
        """One line per DROP_REPORT_S at most: a burst must not turn into a burst of logs."""
        now = time.monotonic()
        if now - self._drops_reported_at < DROP_REPORT_S:
            return
        log.warning(
            "apply queue full (%d events): %d events dropped so far, read back from the inbox once it drains",
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

    def start(self, apply: Apply, refill: Refill | None = None) -> None:
        """Without `refill`, dropped ids wait for the inbox sweep."""
        self._tasks = [
            asyncio.create_task(self._work(apply, refill), name=f"webhook-apply-{n}")
            for n in range(self._workers)
        ]

    async def _work(self, apply: Apply, refill: Refill | None) -> None:
        while True:
            if refill is not None and self._overflowed and self._queue.empty() and not self._refilling:
                await self._refill(refill)
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

    async def _refill(self, refill: Refill) -> None:
        self._overflowed = False
        self._refilling = True
        try:
            ids = await refill(self._queue.maxsize)
        except Exception:
            log.exception("reading pending events back failed; the inbox sweep applies them")
            return
        finally:
            self._refilling = False
        self.refills += 1
        for event_id in ids:
            if not self.submit(event_id):
                break  # full again: marked overflowed, refilled when drained
        if len(ids) >= self._queue.maxsize:
            self._overflowed = True  # a full page: more may be waiting

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
