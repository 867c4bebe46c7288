"""Daily's `meeting.ended`: every session of the meeting that began before the end is finishing
(the next join starts a new one); a session begun after it is left alone. Daily's `end_ts` is on
Daily's clock to 0.1 s; a session's start is Daily's `start_ts` (whole seconds) once Daily named
it, else our own confirmation time (microseconds)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recorder_service.core.models import RecordingType
from recorder_service.core.statuses import RecordingStatus
from tests.plugins.service import RunningService, ServiceFactory, service_env
from tests.support.meetings import meeting_body, register_meeting
from tests.support.recordings import own_session
from tests.support.webhooks import envelope, post_webhook


@pytest.fixture
async def svc(db_url: str, service_factory: ServiceFactory) -> Any:
    async with service_factory(service_env(db_url)) as running:
        yield running


async def _meeting(svc: RunningService) -> tuple[str, str]:
    meeting_id, room = str(uuid.uuid4()), f"room-{uuid.uuid4().hex[:8]}"
    body = meeting_body(room, started_ago=timedelta(minutes=30), lasts=timedelta(hours=2))
    await register_meeting(svc.client, meeting_id, body)
    return meeting_id, room


async def _recording(
    svc: RunningService,
    meeting_id: str,
    room: str,
    rec_type: RecordingType,
    *,
    started_at: float,
    start_ts: int | None = None,
) -> str:
    rec = own_session(
        meeting_id,
        rec_type,
        RecordingStatus.RECORDING,
        room_name=room,
        daily_recording_id=str(uuid.uuid4()) if start_ts is not None else None,
        start_ts=start_ts,
        started_at=datetime.fromtimestamp(started_at, UTC),
    )
    async with svc.app_state.resources.db.transaction() as uow:  # type: ignore[attr-defined]
        await uow.recordings.insert(rec)
    return rec.id


async def _status(svc: RunningService, recording_id: str) -> RecordingStatus:
    async with svc.app_state.resources.db.transaction() as uow:  # type: ignore[attr-defined]
        rec = await uow.recordings.get(recording_id)
    assert rec is not None
    status: RecordingStatus = rec.status
    return status


async def _ended(svc: RunningService, room: str, end_ts: float) -> None:
    payload = {"meeting_id": str(uuid.uuid4()), "room": room, "start_ts": end_ts - 600, "end_ts": end_ts}
    r = await post_webhook(svc.client, envelope("meeting.ended", payload))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "applied", r.json()


async def test_a_session_confirmed_in_the_same_second_as_the_end_is_finishing(svc: RunningService) -> None:
    # Daily: the last participant left at .2 of this second; our start call confirmed the
    # session at .7 of it (after Daily had started it), before Daily's started event named it.
    end_ts = float(int(time.time()) - 60) + 0.2
    meeting_id, room = await _meeting(svc)
    unnamed = await _recording(svc, meeting_id, room, "cloud", started_at=end_ts + 0.5)
    await _ended(svc, room, end_ts)
    assert await _status(svc, unnamed) == RecordingStatus.FINISHING


async def test_a_named_session_is_judged_by_dailys_own_start(svc: RunningService) -> None:
    end_ts = float(int(time.time()) - 60) + 0.2
    meeting_id, room = await _meeting(svc)
    # Our clock ran 3 s ahead of Daily's; Daily's start_ts (whole seconds) is the same second as the end.
    named = await _recording(svc, meeting_id, room, "raw-tracks", started_at=end_ts + 3, start_ts=int(end_ts))
    await _ended(svc, room, end_ts)
    assert await _status(svc, named) == RecordingStatus.FINISHING


async def test_sessions_begun_after_the_end_keep_recording(svc: RunningService) -> None:
    end_ts = float(int(time.time()) - 120) + 0.2
    meeting_id, room = await _meeting(svc)
    unnamed = await _recording(svc, meeting_id, room, "cloud", started_at=end_ts + 30)
    named = await _recording(
        svc, meeting_id, room, "raw-tracks", started_at=end_ts + 31, start_ts=int(end_ts) + 30
    )
    await _ended(svc, room, end_ts)
    assert await _status(svc, unnamed) == RecordingStatus.RECORDING
    assert await _status(svc, named) == RecordingStatus.RECORDING
