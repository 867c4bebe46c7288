"""MeetingRepository: named queries over the meetings table. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.prebuilt import StatementRunner, prebuilt
from recorder_service.adapters.db.tables import MeetingRow
from recorder_service.adapters.db.types import utcnow
from recorder_service.core.models import Meeting

_T: Any = MeetingRow.__table__  # type: ignore[attr-defined]
# Built once (the webhook apply matches every event to a meeting).
_BY_ID: Any = prebuilt(select(_T).where(_T.c.id == bindparam("meeting_id")))
_BY_ROOM_STARTED_BY: Any = prebuilt(
    select(_T).where(_T.c.room_name == bindparam("room_name"), _T.c.start_date <= bindparam("at"))
)


def to_meeting(row: Any) -> Meeting:
    """From a MeetingRow or a Core row of the meetings table (same attribute names)."""
    return Meeting(
        id=row.id,
        room_name=row.room_name,
        recording_type=row.recording_type,
        start_date=row.start_date,
        end_date=row.end_date,
        store_video=row.store_video,
    )


class MeetingRepository:
    def __init__(self, session: AsyncSession, runner: StatementRunner | None = None) -> None:
        self._s = session
        self._run = runner or StatementRunner(session)

    async def get(self, meeting_id: str) -> Meeting | None:
        row = await self._run.first(_BY_ID, {"meeting_id": meeting_id})
        return to_meeting(row) if row is not None else None

    async def lock(self, meeting_id: str) -> Meeting | None:
        """Reads the meeting with a write: its row is locked until the transaction ends
        (PostgreSQL), and on SQLite the transaction holds the write lock from its first
        statement, so the reads that follow cannot go stale before its writes."""
        stmt = update(_T).where(_T.c.id == meeting_id).values(updated_at=utcnow()).returning(*_T.c)
        row = (await self._s.exec(stmt)).first()
        return to_meeting(row) if row is not None else None

    async def upsert(self, meeting: Meeting) -> bool:
        """Returns True when the meeting was created."""
        row = await self._s.get(MeetingRow, meeting.id, with_for_update=True)
        if row is None:
            self._s.add(
                MeetingRow(
                    id=meeting.id,
                    room_name=meeting.room_name,
                    recording_type=meeting.recording_type,
                    start_date=meeting.start_date,
                    end_date=meeting.end_date,
                    store_video=meeting.store_video,
                )
            )
            await self._s.flush()
            return True
        row.room_name = meeting.room_name
        row.recording_type = meeting.recording_type
        row.start_date = meeting.start_date
        row.end_date = meeting.end_date
        row.store_video = meeting.store_video
        row.updated_at = utcnow()
        self._s.add(row)
        await self._s.flush()
        return False

    async def by_room_around(self, room_name: str, at: datetime, tolerance: timedelta) -> Sequence[Meeting]:
        """Meetings of a room whose [start - tol, end + tol] window contains `at`."""
        params = {"room_name": room_name, "at": at + tolerance}
        rows = await self._run.rows(_BY_ROOM_STARTED_BY, params)
        return [to_meeting(r) for r in rows if r.end_date is None or r.end_date + tolerance >= at]
