"""Operator views: stored Daily events and callbacks to Reflector."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from recorder_service.adapters.db.tables import CallbackRow
from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.errors import InvalidInput, RecorderError

EVENT_STATES = ("pending", "applied", "orphan", "ignored", "unparseable")
CALLBACK_STATES = ("pending", "delivered", "dead")


class CallbackNotFound(RecorderError):
    pass


class StoredEvent(msgspec.Struct, frozen=True):
    id: str
    event_type: str | None
    state: str
    source: str
    room_name: str | None
    meeting_id: str | None
    recording_id: str | None
    detail: str | None
    attempts: int
    received_at: datetime
    processed_at: datetime | None


class CallbackView(msgspec.Struct, frozen=True):
    id: str
    event_type: str
    meeting_id: str
    recording_id: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


def _check_state(state: str | None, allowed: Sequence[str]) -> None:
    if state is not None and state not in allowed:
        raise InvalidInput(f"state must be one of {', '.join(allowed)}")


async def list_events(db: Database, *, state: str | None, limit: int) -> list[StoredEvent]:
    _check_state(state, EVENT_STATES)
    async with db.transaction() as uow:
        rows = await uow.inbox.list(state=state, limit=limit)
    return [
        StoredEvent(
            id=r.id,
            event_type=r.event_type,
            state=r.state,
            source=r.source,
            room_name=r.room_name,
            meeting_id=r.meeting_id,
            recording_id=r.recording_id,
            detail=r.detail,
            attempts=r.attempts,
            received_at=r.received_at,
            processed_at=r.processed_at,
        )
        for r in rows
    ]


def _callback_view(r: CallbackRow) -> CallbackView:
    return CallbackView(
        id=r.id,
        event_type=r.event_type,
        meeting_id=r.meeting_id,
        recording_id=r.recording_id,
        state=r.state,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        last_status_code=r.last_status_code,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
    )


async def list_callbacks(db: Database, *, state: str | None, limit: int) -> list[CallbackView]:
    _check_state(state, CALLBACK_STATES)
    async with db.transaction() as uow:
        rows = await uow.callbacks.list(state=state, limit=limit)
    return [_callback_view(r) for r in rows]


async def retry_callback(db: Database, callback_id: str, now: datetime) -> CallbackView:
    """Makes a pending or dead callback due now (a delivered one is left as it is)."""
    async with db.transaction() as uow:
        row = await uow.callbacks.retry_now(callback_id, now)
        if row is None:
            raise CallbackNotFound(f"callback {callback_id} not found")
        return _callback_view(row)
