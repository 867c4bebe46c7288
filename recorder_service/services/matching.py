"""Which meeting a Daily recording belongs to. Daily reuses room names across meetings,
so a room name alone is not enough: the recording's start must fall in the meeting's
window (with tolerance), and the meeting whose start is closest wins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from recorder_service.adapters.db.unit_of_work import UnitOfWork
from recorder_service.core.models import Meeting, RecordingType, instance_id_for

# Contract §6 asks for at least 10 minutes; people join early and stay late.
WINDOW_TOLERANCE = timedelta(minutes=30)


def closest_meeting(candidates: Sequence[Meeting], at: datetime) -> Meeting | None:
    if not candidates:
        return None
    return min(candidates, key=lambda m: (abs((m.start_date - at).total_seconds()), m.id))


async def meeting_for_room(uow: UnitOfWork, room_name: str, at_ts: float) -> Meeting | None:
    at = datetime.fromtimestamp(at_ts, UTC)
    return closest_meeting(await uow.meetings.by_room_around(room_name, at, WINDOW_TOLERANCE), at)


async def meeting_for_instance(uow: UnitOfWork, instance_id: str) -> tuple[Meeting, RecordingType] | None:
    """Resolves our own deterministic instanceIds: first through recordings that carry it,
    then (cloud) through the meeting whose UUID it is."""
    for recording in await uow.recordings.find_by_instance(instance_id):
        meeting = await uow.meetings.get(recording.meeting_id)
        if meeting is not None:
            return meeting, recording.type
    meeting = await uow.meetings.get(instance_id)
    if meeting is not None and instance_id_for(meeting.id, "cloud") == instance_id:
        return meeting, "cloud"
    return None
