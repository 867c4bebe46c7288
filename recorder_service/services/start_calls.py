"""The calls to Daily of one join-time start (services/starts.py holds the lock and the claim):
every HTTP request through the deployment's start budget, "not hosting" retried for a while
and shared per room, Daily's errors quoted without the room name."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Literal
from urllib.parse import quote

from recorder_service.adapters.start_budget import StartBudget
from recorder_service.core.models import Meeting, RecordingType
from recorder_service.core.ports import DailyRecordingStarter
from recorder_service.errors import (
    CoordinationUnavailable,
    DailyActiveStream,
    DailyError,
    DailyNotHosting,
    RoomNotHosting,
    StartBudgetExhausted,
)
from recorder_service.telemetry import Telemetry

log = logging.getLogger(__name__)

# Anonymous callers read this (contract §3): no room name, which is a join URL for public rooms.
NOT_HOSTING_DETAIL = "Daily is not hosting the meeting's call yet; retry after Retry-After"


class BudgetGate:
    """Each HTTP start request of one start, the client's own retries included, takes a call
    from the budget (core/ports.py CallGate)."""

    def __init__(self, budget: StartBudget, ticket: str, room: str) -> None:
        self._budget = budget
        self._ticket = ticket
        self._room = room
        self._grant: str | None = None
        self.calls = 0
        self.wait_s = budget.policy.wait_s

    async def enter(self) -> None:
        # The first call of a start is a first call; any other (a not-hosting retry, or the
        # client's retry after a 429 or 5xx) is a retry.
        retry = self.calls > 0
        self._grant = await self._budget.acquire(
            self._ticket, room=self._room, retry=retry, wait_s=self.wait_s
        )
        self.calls += 1

    async def leave(self, status_code: int | None, retry_after_s: float | None) -> None:
        if self._grant is not None:
            grant, self._grant = self._grant, None
            try:
                await self._budget.complete(grant, status_code=status_code, retry_after_s=retry_after_s)
            except CoordinationUnavailable:
                # Daily has answered: that answer counts, whatever Redis does. The call keeps its
                # place in the window for its whole hold instead.
                log.warning("start budget: could not record the end of a call (redis unavailable)")


def anonymous_daily_error(exc: DailyError, room_name: str) -> DailyError:
    """Daily's error as an anonymous caller may read it: its `error`/`info` quoted, the room name
    cut out."""

    def scrub(text: str | None) -> str | None:
        if text is None:
            return None
        for name in {room_name, quote(room_name, safe="")}:
            text = text.replace(name, "<room>")
        return text

    return DailyError(
        scrub(str(exc)) or "Daily failed",
        status_code=exc.status_code,
        error_type=scrub(exc.error_type),
        info=scrub(exc.info),
    )


def not_hosting_retry_after(delay_s: float) -> int:
    return max(1, math.ceil(delay_s))


async def start_at_daily(
    daily: DailyRecordingStarter,
    budget: StartBudget,
    telemetry: Telemetry,
    *,
    meeting: Meeting,
    rec_type: RecordingType,
    instance_id: str,
    max_duration_s: int,
    not_hosting_budget_s: float,
    not_hosting_delay_s: float,
) -> Literal["started", "already_active"]:
    """Raises StartBudgetExhausted when no call could be had within the wait (the first call, or
    the client's retry after Daily's 429 or 5xx), RoomNotHosting when Daily still says "not
    hosting" after `not_hosting_budget_s` (or a not-hosting retry could not get a call in that
    time), and DailyError (without the room name) when Daily failed."""
    room = meeting.room_name
    gate = BudgetGate(budget, f"{meeting.id}:{rec_type}", room)
    deadline: float | None = None  # set by the first "not hosting"
    while True:
        # Between our retries, another type's start (or another meeting in the room) may have
        # heard "not hosting" a moment ago: that answer is ours too, without a call.
        if gate.calls == 0 or not await budget.not_hosting_recently(room):
            try:
                with telemetry.tracer.start_as_current_span(
                    "start.daily_attempt", attributes={"recorder.attempt": gate.calls + 1}
                ):
                    await daily.start_recording(
                        room, type=rec_type, instance_id=instance_id, max_duration_s=max_duration_s, gate=gate
                    )
                await budget.note_hosting(room)
                return "started"
            except DailyActiveStream:
                await budget.note_hosting(room)
                return "already_active"
            except StartBudgetExhausted as exc:
                if deadline is None:
                    raise  # no call yet, or a retry after Daily's 429 or 5xx: 429
                # A not-hosting retry found no call in time: Daily's last word was "not hosting".
                raise RoomNotHosting(NOT_HOSTING_DETAIL, retry_after_s=exc.retry_after_s) from exc
            except DailyNotHosting:
                await budget.note_not_hosting(room)
            except DailyError as exc:
                raise anonymous_daily_error(exc, room) from exc
        now = time.monotonic()
        if deadline is None:
            deadline = now + not_hosting_budget_s
        if now + not_hosting_delay_s > deadline:
            raise RoomNotHosting(
                NOT_HOSTING_DETAIL, retry_after_s=not_hosting_retry_after(not_hosting_delay_s)
            )
        await asyncio.sleep(not_hosting_delay_s)
        # The next call waits for the budget no longer than the retries have left.
        gate.wait_s = max(0.0, deadline - time.monotonic())
