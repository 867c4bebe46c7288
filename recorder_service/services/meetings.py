"""Meeting registry use cases."""

from __future__ import annotations

from collections.abc import Sequence

from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.core.models import Availability, Meeting, Recording
from recorder_service.errors import InvalidInput, MeetingNotFound

MAX_AVAILABILITY_IDS = 100


async def register_meeting(db: Database, meeting: Meeting) -> bool:
    """Creates or updates; returns True when created."""
    if meeting.end_date is not None and meeting.end_date < meeting.start_date:
        raise InvalidInput("end_date is before start_date")
    async with db.transaction() as uow:
        return await uow.meetings.upsert(meeting)


async def meeting_with_recordings(
    db: Database, meeting_id: str
) -> tuple[Meeting, list[Recording], Availability]:
    async with db.transaction() as uow:
        meeting = await uow.meetings.get(meeting_id)
        if meeting is None:
            raise MeetingNotFound(f"meeting {meeting_id} is not registered")
        recordings = list(await uow.recordings.list_for_meeting(meeting_id))
        availability = (await uow.recordings.availability([meeting_id]))[meeting_id]
    return meeting, recordings, availability


async def availability_of(db: Database, meeting_ids: Sequence[str]) -> dict[str, Availability]:
    unique = list(dict.fromkeys(meeting_ids))
    if len(unique) > MAX_AVAILABILITY_IDS:
        raise InvalidInput(f"at most {MAX_AVAILABILITY_IDS} meeting_id values per request")
    if not unique:
        return {}
    async with db.transaction() as uow:
        return await uow.recordings.availability(unique)
