"""RecordingRepository: named queries over recordings. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.tables import ACTIVE_STATUSES, RecordingRow
from recorder_service.adapters.db.types import utcnow
from recorder_service.domain.models import Availability, Recording, RecordingType, Track
from recorder_service.errors import RecorderError


class RecordingAlreadyActive(RecorderError):
    """The unique (meeting, type) active index refused a second running session."""


def to_recording(row: RecordingRow) -> Recording:
    tracks = None
    if row.tracks is not None:
        tracks = tuple(
            Track(
                type=str(t.get("type", "")),
                s3_key=str(t.get("s3_key", "")),
                size=cast(int | None, t.get("size")),
            )
            for t in row.tracks
        )
    return Recording(
        id=row.id,
        meeting_id=row.meeting_id,
        type=cast(RecordingType, row.type),
        audio_only=row.audio_only,
        instance_id=row.instance_id,
        status=cast(Any, row.status),
        daily_recording_id=row.daily_recording_id,
        room_name=row.room_name,
        s3_key=row.s3_key,
        duration=row.duration,
        tracks=tracks,
        start_ts=row.start_ts,
        started_at=row.started_at,
        ready_at=row.ready_at,
        error=row.error,
    )


def tracks_to_json(tracks: Sequence[Track] | None) -> list[dict[str, object]] | None:
    if tracks is None:
        return None
    return [{"type": t.type, "s3_key": t.s3_key, "size": t.size} for t in tracks]


class RecordingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, recording_id: str) -> Recording | None:
        row = await self._s.get(RecordingRow, recording_id)
        return to_recording(row) if row else None

    async def get_by_daily_id(self, daily_recording_id: str) -> Recording | None:
        stmt = select(RecordingRow).where(RecordingRow.daily_recording_id == daily_recording_id)
        row = (await self._s.exec(stmt)).first()
        return to_recording(row) if row else None

    async def find_active(self, meeting_id: str, type: RecordingType) -> Recording | None:
        stmt = select(RecordingRow).where(
            RecordingRow.meeting_id == meeting_id,
            RecordingRow.type == type,
            col(RecordingRow.status).in_(ACTIVE_STATUSES),
        )
        row = (await self._s.exec(stmt)).first()
        return to_recording(row) if row else None

    async def find_by_instance(self, instance_id: str) -> Sequence[Recording]:
        """Every recording of this instanceId, newest first."""
        stmt = select(RecordingRow).where(RecordingRow.instance_id == instance_id)
        rows = (await self._s.exec(stmt.order_by(col(RecordingRow.created_at).desc()))).all()
        return [to_recording(r) for r in rows]

    async def list_for_meeting(self, meeting_id: str) -> Sequence[Recording]:
        stmt = (
            select(RecordingRow)
            .where(RecordingRow.meeting_id == meeting_id)
            .order_by(col(RecordingRow.created_at), col(RecordingRow.id))
        )
        return [to_recording(r) for r in (await self._s.exec(stmt)).all()]

    async def unnamed_sessions(self, meeting_id: str, rec_type: str) -> Sequence[Recording]:
        """Running sessions of a meeting and type that Daily has not named yet (no Daily id)."""
        stmt = select(RecordingRow).where(
            RecordingRow.meeting_id == meeting_id,
            RecordingRow.type == rec_type,
            col(RecordingRow.status).in_(("recording", "finishing")),
            col(RecordingRow.daily_recording_id).is_(None),
        )
        return [to_recording(r) for r in (await self._s.exec(stmt)).all()]

    async def insert(self, row: RecordingRow) -> Recording:
        """Inserts in a savepoint so a unique violation leaves the transaction usable."""
        try:
            async with self._s.begin_nested():
                self._s.add(row)
                await self._s.flush()
        except IntegrityError as exc:
            raise RecordingAlreadyActive(f"{row.meeting_id}/{row.type}") from exc
        return to_recording(row)

    async def set_fields(self, recording_id: str, **fields: Any) -> None:
        row = await self._s.get(RecordingRow, recording_id)
        if row is None:
            return
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        self._s.add(row)
        await self._s.flush()

    async def name_session(self, recording_id: str, **fields: Any) -> bool:
        """Sets `fields` on a session Daily has not named yet (no Daily recording id). False when
        another event named it first: two concurrent applies must never both take one session."""
        result = await self._s.exec(
            update(RecordingRow)
            .where(col(RecordingRow.id) == recording_id, col(RecordingRow.daily_recording_id).is_(None))
            .values(**fields, updated_at=utcnow())
            .returning(col(RecordingRow.id))
        )
        return result.first() is not None

    async def confirm_claim(self, recording_id: str, *, started_at: datetime) -> None:
        """Daily accepted the start: the claim becomes a running recording, unless something
        (a webhook) has already moved it past "starting"."""
        await self._s.exec(
            update(RecordingRow)
            .where(col(RecordingRow.id) == recording_id, col(RecordingRow.status) == "starting")
            .values(status="recording", started_at=started_at, updated_at=utcnow())
        )

    async def delete_claim(self, recording_id: str) -> None:
        await self._s.exec(
            delete(RecordingRow).where(
                col(RecordingRow.id) == recording_id, col(RecordingRow.status) == "starting"
            )
        )

    async def latest_ready_cloud(self, meeting_id: str, selector: str | None = None) -> Recording | None:
        stmt = select(RecordingRow).where(
            RecordingRow.meeting_id == meeting_id,
            RecordingRow.type == "cloud",
            RecordingRow.status == "ready",
            col(RecordingRow.s3_key).is_not(None),
        )
        if selector is not None:
            stmt = stmt.where(
                (col(RecordingRow.id) == selector) | (col(RecordingRow.daily_recording_id) == selector)
            )
        stmt = stmt.order_by(col(RecordingRow.start_ts).desc(), col(RecordingRow.ready_at).desc()).limit(1)
        row = (await self._s.exec(stmt)).first()
        return to_recording(row) if row else None

    async def availability(self, meeting_ids: Sequence[str]) -> dict[str, Availability]:
        """One query for all ids: the latest ready cloud recording per meeting."""
        ranked = (
            select(
                col(RecordingRow.meeting_id),
                col(RecordingRow.duration),
                func.row_number()
                .over(
                    partition_by=col(RecordingRow.meeting_id),
                    order_by=(col(RecordingRow.start_ts).desc(), col(RecordingRow.ready_at).desc()),
                )
                .label("rank"),
            )
            .where(
                col(RecordingRow.meeting_id).in_(list(meeting_ids)),
                RecordingRow.type == "cloud",
                RecordingRow.status == "ready",
                col(RecordingRow.s3_key).is_not(None),
            )
            .subquery()
        )
        rows = (
            await self._s.exec(select(ranked.c.meeting_id, ranked.c.duration).where(ranked.c.rank == 1))
        ).all()
        found = {mid: Availability(True, duration) for mid, duration in rows}
        return {mid: found.get(mid, Availability(False, None)) for mid in meeting_ids}

    async def unfinished_started_before(self, before: datetime) -> Sequence[Recording]:
        stmt = select(RecordingRow).where(
            col(RecordingRow.status).in_(("recording", "finishing")), col(RecordingRow.started_at) < before
        )
        return [to_recording(r) for r in (await self._s.exec(stmt)).all()]

    async def delete_stale_claims(self, older_than: datetime) -> int:
        stale = await self.stale_starting(older_than)
        for rec in stale:
            await self.delete_claim(rec.id)
        return len(stale)

    async def stale_starting(self, older_than: datetime) -> Sequence[Recording]:
        stmt = select(RecordingRow).where(
            RecordingRow.status == "starting", col(RecordingRow.created_at) < older_than
        )
        return [to_recording(r) for r in (await self._s.exec(stmt)).all()]
