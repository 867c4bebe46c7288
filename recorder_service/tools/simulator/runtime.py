"""The running simulator: model, webhook delivery, bucket writes, faults and background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx

from recorder_service.tools.simulator.config import SimulatorConfig
from recorder_service.tools.simulator.faults import CallLog, FaultBook
from recorder_service.tools.simulator.model import Recording
from recorder_service.tools.simulator.state import SimState
from recorder_service.tools.simulator.storage import RecordingWriter, open_writer
from recorder_service.tools.simulator.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        http: httpx.AsyncClient,
        writer: RecordingWriter | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.writer = writer
        self.domain_id = str(uuid.uuid4())
        self.state = SimState(config, clock)
        self.webhooks = WebhookDispatcher(http, self.domain_id, config.webhook_delivery_delay_s, clock)
        self.faults = FaultBook()
        self.calls = CallLog()
        self._tasks: set[asyncio.Task[None]] = set()

    async def enter_operation(self, operation: str) -> None:
        """Applies persistent latency, then the next injected fault for this REST operation."""
        latency_s = self.faults.latency_for(operation)
        fault = self.faults.take(operation)
        if fault is not None:
            latency_s += fault.latency_s
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        error = fault.as_error() if fault is not None else None
        if error is not None:
            raise error

    def flush(self) -> None:
        """Hands the events and finished recordings of the last state change to delivery."""
        events, finished = self.state.drain()
        for event in events:
            self.webhooks.publish(event)
        for rec in finished:
            if self.writer is None:
                self.webhooks.publish(self.state.ready_event(rec))
            else:
                self._spawn(self._upload_then_announce(rec, self.writer))

    async def _upload_then_announce(self, rec: Recording, writer: RecordingWriter) -> None:
        # Daily announces a recording only once its files are in the bucket.
        try:
            await writer.write(rec.files)
        except Exception:
            logger.exception("simulator could not write recording %s to the bucket", rec.id)
            self.state.fail_recording(rec.id, "recording failed: unable to write to bucket")
            self.flush()
            return
        self.webhooks.publish(self.state.ready_event(rec))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reset(self) -> None:
        await self.close()
        self.state = SimState(self.config, self.clock)
        self.faults.clear()
        self.calls.clear()
        self.webhooks.deliveries.clear()
        self.webhooks.paused = False

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.webhooks.close()


@contextlib.asynccontextmanager
async def open_simulator(config: SimulatorConfig) -> AsyncIterator[Simulator]:
    async with httpx.AsyncClient(follow_redirects=False) as http, open_writer(config) as writer:
        simulator = Simulator(config, http, writer)
        try:
            yield simulator
        finally:
            await simulator.close()
