"""What the domain needs from the outside world, as Protocols (adapters implement them)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Literal, Protocol

StartType = Literal["cloud", "raw-tracks", "cloud-audio-only"]


class Coordinator(Protocol):
    """Cross-replica mutual exclusion plus a short-lived note of the last start outcome."""

    def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[None]:
        """Raises LockWaitTimeout when not acquired within wait_s; CoordinationUnavailable on backend loss."""
        ...

    async def put_outcome(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def get_outcome(self, key: str) -> bytes | None: ...


class DailyRecordingStarter(Protocol):
    async def start_recording(
        self, room_name: str, *, type: StartType, instance_id: str, max_duration_s: int | None = None
    ) -> None: ...


class ApplyScheduler(Protocol):
    """Decides whether a stored webhook is applied inside its request or queued beside it."""

    def delivery(self) -> AbstractContextManager[None]:
        """Held while one delivery is being received (counts concurrent deliveries)."""
        ...

    def should_apply_inline(self) -> bool: ...

    def submit(self, event_id: str) -> bool:
        """Queues the event; False when the queue is full (the inbox sweep applies it later)."""
        ...
