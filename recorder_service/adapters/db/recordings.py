"""RecordingRepository: named queries over recordings. Never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.prebuilt import StatementRunner, prebuilt
from recorder_service.adapters.db.tables import RecordingRow
from recorder_service.adapters.db.types import utcnow
from recorder_service.core.models import Availability, Recording, RecordingType, Track
from recorder_service.core.statuses import ACTIVE_STATUSES, UNFINISHED_STATUSES, RecordingStatus
from recorder_service.errors import RecordingAlreadyActive

_T: Any = RecordingRow.__table__  # type: ignore[attr-defined]
_C: Any = _T.c


def _statuses(statuses: Iterable[RecordingStatus]) -> Any:
    """`status IN (…)` as ORs of plain parameters: a prebuilt statement takes no expanding IN."""
    return or_(*(_C.status == s.value for s in statuses))


# The webhook apply's statements, built once: SQLAlchemy then skips building them and working
# out their cache key on every execution, a large part of the apply's CPU otherwise.
_BY_DAILY_ID = prebuilt(select(_T).where(_C.daily_recording_id == bindparam("daily_recording_id")))
_ACTIVE = prebuilt(
    select(_T).where(
        _C.meeting_id == bindparam("meeting_id"),
        _C.type == bindparam("rec_type"),
        _statuses(ACTIVE_STATUSES),
    )
)
_BY_INSTANCE = prebuilt(
    select(_T).where(_C.instance_id == bindparam("instance_id")).order_by(_C.created_at.desc())
)
_UNNAMED = prebuilt(
    select(_T).where(
        _C.meeting_id == bindparam("meeting_id"),
        _C.type == bindparam("rec_type"),
        _statuses(UNFINISHED_STATUSES),
        _C.daily_recording_id.is_(None),
    )
)
_DELETED_UNNAMED = prebuilt(
    select(_T).where(
        _C.meeting_id == bindparam("meeting_id"),
        _C.type == bindparam("rec_type"),
        _C.status == RecordingStatus.DELETED.value,
        _C.daily_recording_id.is_(None),
        _C.ready_at.is_(None),
    )
)
# Sessions a ready event may finish: unnamed unfinished ones, and unnamed ones deleted after
# Daily accepted them (started) and before they were ready.
_READY_CANDIDATES = prebuilt(
    select(_T).where(
        _C.meeting_id == bindparam("meeting_id"),
        _C.type == bindparam("rec_type"),
        _C.daily_recording_id.is_(None),
        or_(
            _statuses(UNFINISHED_STATUSES),
            and_(
                _C.status == RecordingStatus.DELETED.value,
                _C.ready_at.is_(None),
                _C.started_at.is_not(None),
            ),
        ),
    )
)
_INSERT = prebuilt(insert(_T))
# SET is whatever columns the parameters name, besides `where_id`.
_UPDATE = prebuilt(update(_T).where(_C.id == bindparam("where_id")))
# Also conditional on the status the caller saw: a deletion committed meanwhile must not be
# overwritten by a ready or started event (PostgreSQL re-checks the condition after the row lock).
_NAME_SESSION = prebuilt(
    update(_T)
    .where(
        _C.id == bindparam("where_id"),
        _C.daily_recording_id.is_(None),
        _C.status == bindparam("expected_status"),
    )
    .returning(_C.id)
)
_UPDATE_UNLESS_DELETED = prebuilt(
    update(_T)
    .where(_C.id == bindparam("where_id"), _C.status != RecordingStatus.DELETED.value)
    .returning(_C.id)
)
_BY_ID = prebuilt(select(_T).where(_C.id == bindparam("recording_id")))
# Playback's read, one per redirect: the latest ready cloud recording, or the one picked by our
# id or Daily's.
_LATEST_READY_CLOUD = prebuilt(
    select(_T)
    .where(
        _C.meeting_id == bindparam("meeting_id"),
        _C.type == "cloud",
        _C.status == RecordingStatus.READY.value,
        _C.s3_key.is_not(None),
    )
    .order_by(_C.start_ts.desc(), _C.ready_at.desc())
    .limit(1)
)
_LATEST_READY_CLOUD_PICKED = prebuilt(
    _LATEST_READY_CLOUD.where(
        (_C.id == bindparam("selector")) | (_C.daily_recording_id == bindparam("selector"))
    )
)


def _latest_ready_cloud_query(meeting_id: str, selector: str | None) -> tuple[Any, dict[str, str]]:
    if selector is None:
        return _LATEST_READY_CLOUD, {"meeting_id": meeting_id}
    return _LATEST_READY_CLOUD_PICKED, {"meeting_id": meeting_id, "selector": selector}


class RecordingReads:
    """Single reads on a connection in autocommit (`Database.autocommit()`)."""

    def __init__(self, runner: StatementRunner) -> None:
        self._run = runner

    async def latest_ready_cloud(self, meeting_id: str, selector: str | None = None) -> Recording | None:
        stmt, params = _latest_ready_cloud_query(meeting_id, selector)
        row = await self._run.first(stmt, params)
        return to_recording(row) if row is not None else None


_TYPES: dict[str, RecordingType] = {"cloud": "cloud", "raw-tracks": "raw-tracks"}


def to_recording(row: Any) -> Recording:
    """From a RecordingRow or a Core row of the recordings table (same attribute names)."""
    tracks = None
    if row.tracks is not None:
        tracks = tuple(
            Track(type=str(t.get("type", "")), s3_key=str(t.get("s3_key", "")), size=_size(t.get("size")))
            for t in row.tracks
        )
    return Recording(
        id=row.id,
        meeting_id=row.meeting_id,
        type=_TYPES[row.type],
        audio_only=row.audio_only,
        instance_id=row.instance_id,
        status=RecordingStatus(row.status),
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


def _size(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _column_value(value: object) -> object:
    """Plain column values: enum members as their text, tracks as the JSON column's list."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple) and all(isinstance(t, Track) for t in value):
        return [{"type": t.type, "s3_key": t.s3_key, "size": t.size} for t in value]
    return value


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: _column_value(value) for name, value in fields.items()}


def _row_values(recording: Recording, now: datetime) -> dict[str, Any]:
    values = {name: getattr(recording, name) for name in Recording.__struct_fields__}
    return _columns(values) | {"created_at": now, "updated_at": now}


class RecordingRepository:
    """Core statements over the recordings table, answered as `Recording` structs: the webhook
    apply runs several of these per event, and loading ORM entities cost most of its CPU."""

    def __init__(self, session: AsyncSession, runner: StatementRunner | None = None) -> None:
        self._s = session
        self._run = runner or StatementRunner(session)

    async def _one(self, stmt: Any, **params: Any) -> Recording | None:
        row = await self._run.first(stmt, params)
        return to_recording(row) if row is not None else None

    async def _all(self, stmt: Any, **params: Any) -> list[Recording]:
        return [to_recording(r) for r in await self._run.rows(stmt, params)]

    async def get_by_daily_id(self, daily_recording_id: str) -> Recording | None:
        return await self._one(_BY_DAILY_ID, daily_recording_id=daily_recording_id)

    async def find_active(self, meeting_id: str, type: RecordingType) -> Recording | None:
        return await self._one(_ACTIVE, meeting_id=meeting_id, rec_type=type)

    async def find_by_instance(self, instance_id: str) -> Sequence[Recording]:
        """Every recording of this instanceId, newest first."""
        return await self._all(_BY_INSTANCE, instance_id=instance_id)

    async def list_for_meeting(self, meeting_id: str) -> Sequence[Recording]:
        return await self._all(select(_T).where(_C.meeting_id == meeting_id).order_by(_C.created_at, _C.id))

    async def unnamed_sessions(self, meeting_id: str, rec_type: str) -> Sequence[Recording]:
        """Running sessions of a meeting and type that Daily has not named yet (no Daily id)."""
        return await self._all(_UNNAMED, meeting_id=meeting_id, rec_type=rec_type)

    async def ready_candidates(self, meeting_id: str, rec_type: str) -> Sequence[Recording]:
        """In one query: unnamed_sessions, and the deleted_unnamed ones that had started."""
        return await self._all(_READY_CANDIDATES, meeting_id=meeting_id, rec_type=rec_type)

    async def insert(
        self, recording: Recording, *, savepoint: bool = True, created_at: datetime | None = None
    ) -> Recording:
        """Inserts `recording`. In a savepoint by default, so a unique violation (a second running
        session) leaves the transaction usable; without one, a violation fails the transaction."""
        values = _row_values(recording, created_at or utcnow())
        if not savepoint:
            await self._run.rowcount(_INSERT, values)
            return recording
        try:
            async with self._s.begin_nested():
                await self._s.exec(_INSERT, params=values)
        except IntegrityError as exc:
            raise RecordingAlreadyActive(f"{recording.meeting_id}/{recording.type}") from exc
        return recording

    async def set_fields(self, recording_id: str, **fields: Any) -> None:
        params = _columns(fields) | {"updated_at": utcnow(), "where_id": recording_id}
        await self._run.rowcount(_UPDATE, params)

    async def name_session(self, recording_id: str, *, expected: RecordingStatus, **fields: Any) -> bool:
        """Sets `fields` on a session Daily has not named yet (no Daily recording id) whose status is
        still `expected`. False when another event named it first (two concurrent applies must never
        both take one session) or its status changed meanwhile (e.g. it was deleted)."""
        params = _columns(fields) | {
            "updated_at": utcnow(),
            "where_id": recording_id,
            "expected_status": expected.value,
        }
        return await self._run.first(_NAME_SESSION, params) is not None

    async def set_fields_unless_deleted(self, recording_id: str, **fields: Any) -> bool:
        """Like set_fields, except on a deleted recording (False then: nothing changed)."""
        params = _columns(fields) | {"updated_at": utcnow(), "where_id": recording_id}
        return await self._run.first(_UPDATE_UNLESS_DELETED, params) is not None

    async def get(self, recording_id: str) -> Recording | None:
        return await self._one(_BY_ID, recording_id=recording_id)

    async def mark_deleted(self, recording_id: str, *, expected: RecordingStatus) -> Recording | None:
        """`deleted`, if the status is still `expected` (compare-and-set: a concurrent ready event
        or deletion makes this return None, and the caller reads the row again)."""
        stmt = (
            update(_T)
            .where(_C.id == recording_id, _C.status == expected.value)
            .values(status=RecordingStatus.DELETED.value, updated_at=utcnow())
            .returning(*_C)
        )
        row = (await self._s.exec(stmt)).first()
        return to_recording(row) if row is not None else None

    async def deleted_unnamed(self, meeting_id: str, rec_type: str) -> Sequence[Recording]:
        """Sessions deleted before Daily finished them and before we learned their Daily id:
        their started or ready event must still find them (and leave them deleted)."""
        return await self._all(_DELETED_UNNAMED, meeting_id=meeting_id, rec_type=rec_type)

    async def ready_before(
        self, rec_type: RecordingType, before: datetime, limit: int
    ) -> Sequence[Recording]:
        """Ready recordings of a type that became ready before `before`, oldest first (retention)."""
        return await self._all(
            select(_T)
            .where(_C.type == rec_type, _C.status == RecordingStatus.READY.value, _C.ready_at < before)
            .order_by(_C.ready_at, _C.id)
            .limit(limit)
        )

    async def confirm_claim(self, recording_id: str, *, started_at: datetime) -> None:
        """Daily accepted the start: the claim becomes a running recording, unless something
        (a webhook) has already moved it past "starting"."""
        await self._s.exec(
            update(_T)
            .where(_C.id == recording_id, _C.status == RecordingStatus.STARTING.value)
            .values(status=RecordingStatus.RECORDING.value, started_at=started_at, updated_at=utcnow())
        )
        # Deleted while Daily was being asked: it stays deleted, but is now known to be recording,
        # so its started and ready events still find it (and its objects get deleted).
        await self._s.exec(
            update(_T)
            .where(
                _C.id == recording_id,
                _C.status == RecordingStatus.DELETED.value,
                _C.started_at.is_(None),
                _C.ready_at.is_(None),
            )
            .values(started_at=started_at, updated_at=utcnow())
        )

    async def delete_claim(self, recording_id: str) -> None:
        await self._s.exec(
            delete(_T).where(_C.id == recording_id, _C.status == RecordingStatus.STARTING.value)
        )

    async def availability(self, meeting_ids: Sequence[str]) -> dict[str, Availability]:
        """One query for all ids: the latest ready cloud recording per meeting."""
        ranked = (
            select(
                _C.meeting_id,
                _C.duration,
                func.row_number()
                .over(partition_by=_C.meeting_id, order_by=(_C.start_ts.desc(), _C.ready_at.desc()))
                .label("rank"),
            )
            .where(
                _C.meeting_id.in_(list(meeting_ids)),
                _C.type == "cloud",
                _C.status == RecordingStatus.READY.value,
                _C.s3_key.is_not(None),
            )
            .subquery()
        )
        latest: Any = select(ranked.c.meeting_id, ranked.c.duration).where(ranked.c.rank == 1)
        rows = (await self._s.exec(latest)).all()
        found = {mid: Availability(True, duration) for mid, duration in rows}
        return {mid: found.get(mid, Availability(False, None)) for mid in meeting_ids}

    async def unfinished_started_before(self, before: datetime) -> Sequence[Recording]:
        return await self._all(
            select(_T).where(_C.status.in_([s.value for s in UNFINISHED_STATUSES]), _C.started_at < before)
        )

    async def delete_stale_claims(self, older_than: datetime) -> int:
        stale = await self.stale_starting(older_than)
        for rec in stale:
            await self.delete_claim(rec.id)
        return len(stale)

    async def stale_starting(self, older_than: datetime) -> Sequence[Recording]:
        return await self._all(
            select(_T).where(_C.status == RecordingStatus.STARTING.value, _C.created_at < older_than)
        )
