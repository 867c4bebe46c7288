"""DeletionRepository: the outbox of S3 removals. Never commits."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.statements import insert_for, newest_first
from recorder_service.adapters.db.tables import DeletionRow
from recorder_service.core.deletions import (
    ClaimedDeletion,
    DeletionReason,
    DeletionScope,
    DeletionView,
    NewDeletion,
)
from recorder_service.core.statuses import DeletionState

_PENDING = DeletionState.PENDING.value
_WAITING = DeletionState.WAITING.value
_DELETIONS: Any = DeletionRow.__table__  # type: ignore[attr-defined]


@functools.cache
def _add_statement(dialect: str) -> Any:
    return insert_for(dialect)(_DELETIONS).on_conflict_do_nothing().returning(_DELETIONS.c.id)


class DeletionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, job: NewDeletion) -> bool:
        """One job per (recording, scope): a second add is a no-op (False)."""
        values = {
            "id": job.id,
            "recording_id": job.recording_id,
            "meeting_id": job.meeting_id,
            "scope": job.scope.value,
            "reason": job.reason.value,
            "state": job.state.value,
            "keys": list(job.keys),
            "object_count": len(job.keys),
            "attempts": 0,
            "next_attempt_at": job.created_at,
            "lease_until": None,
            "lease_owner": None,
            "last_error": None,
            "daily_outcome": None,
            "created_at": job.created_at,
            "completed_at": None,
        }
        stmt = _add_statement(self._s.get_bind().dialect.name)
        return (await self._s.exec(stmt, params=values)).first() is not None

    async def reopen(self, recording_id: str, keys: tuple[str, ...], now: datetime) -> bool:
        """The recording's job, due now with `keys`: a recording deleted while it was recorded
        has finished, so its objects are known. Whatever the job's state (usually waiting), and
        its lease is broken: a worker still busy with the old list then fails to complete it,
        and the job runs again with the new one. False when the recording has no job."""
        result = await self._s.exec(
            update(DeletionRow)
            .where(
                col(DeletionRow.recording_id) == recording_id,
                col(DeletionRow.scope) == DeletionScope.RECORDING.value,
            )
            .values(
                state=_PENDING,
                keys=list(keys),
                object_count=len(keys),
                next_attempt_at=now,
                lease_until=None,
                lease_owner=None,
                completed_at=None,
            )
        )
        return bool(result.rowcount)

    async def claim_due(
        self, *, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[ClaimedDeletion]:
        """Leases due jobs; SKIP LOCKED lets replicas share them on PostgreSQL, and an expired
        lease (a killed process) makes a job claimable again."""
        stmt = (
            select(DeletionRow)
            .where(
                col(DeletionRow.state) == _PENDING,
                col(DeletionRow.next_attempt_at) <= now,
                or_(col(DeletionRow.lease_until).is_(None), col(DeletionRow.lease_until) < now),
            )
            .order_by(col(DeletionRow.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list((await self._s.exec(stmt)).all())
        for row in rows:
            row.lease_until = now + lease
            row.lease_owner = owner
            self._s.add(row)
        await self._s.flush()
        return [
            ClaimedDeletion(
                id=r.id,
                recording_id=r.recording_id,
                meeting_id=r.meeting_id,
                scope=DeletionScope(r.scope),
                reason=DeletionReason(r.reason),
                keys=tuple(r.keys),
                attempts=r.attempts,
            )
            for r in rows
        ]

    async def _leased_update(self, job_id: str, owner: str, **values: Any) -> bool:
        result = await self._s.exec(
            update(DeletionRow)
            .where(
                col(DeletionRow.id) == job_id,
                col(DeletionRow.lease_owner) == owner,
                col(DeletionRow.state) == _PENDING,
            )
            .values(lease_until=None, lease_owner=None, **values)
        )
        return bool(result.rowcount)

    async def complete(self, job_id: str, *, owner: str, now: datetime) -> bool:
        """Done, if we still hold the lease; False when we lost it (another worker has it)."""
        return await self._leased_update(
            job_id,
            owner,
            state=DeletionState.DONE.value,
            attempts=DeletionRow.attempts + 1,
            last_error=None,
            completed_at=now,
        )

    async def record_failure(self, job_id: str, *, owner: str, error: str, next_attempt_at: datetime) -> bool:
        return await self._leased_update(
            job_id,
            owner,
            attempts=DeletionRow.attempts + 1,
            last_error=error[:2000],
            next_attempt_at=next_attempt_at,
        )

    async def release(self, job_id: str, owner: str) -> None:
        await self._s.exec(
            update(DeletionRow)
            .where(col(DeletionRow.id) == job_id, col(DeletionRow.lease_owner) == owner)
            .values(lease_until=None, lease_owner=None)
        )

    async def set_daily_outcome(self, job_id: str, outcome: str) -> None:
        await self._s.exec(
            update(DeletionRow).where(col(DeletionRow.id) == job_id).values(daily_outcome=outcome[:32])
        )

    async def retry_now(self, job_id: str, now: datetime) -> DeletionView | None:
        row = await self._s.get(DeletionRow, job_id, with_for_update=True)
        if row is None:
            return None
        if row.state == DeletionState.PENDING:
            row.next_attempt_at = now
            row.lease_until = None
            row.lease_owner = None
            self._s.add(row)
            await self._s.flush()
        return _view(row)

    async def list(
        self, *, state: DeletionState | None, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[DeletionView]:
        """Newest first by (created_at, id); with `before`, only rows after that key in this order."""
        stmt = select(DeletionRow)
        if state is not None:
            stmt = stmt.where(col(DeletionRow.state) == state.value)
        stmt = newest_first(
            stmt, col(DeletionRow.created_at), col(DeletionRow.id), before=before, limit=limit
        )
        return [_view(row) for row in (await self._s.exec(stmt)).all()]

    async def pending_stats(self) -> tuple[int, datetime | None]:
        """(objects waiting to be removed, creation time of the oldest job holding some)."""
        stmt = select(
            func.coalesce(func.sum(DeletionRow.object_count), 0), func.min(DeletionRow.created_at)
        ).where(col(DeletionRow.state) == _PENDING)
        count, oldest = (await self._s.exec(stmt)).one()
        return int(count), oldest

    async def next_due_at(self) -> datetime | None:
        stmt = select(func.min(DeletionRow.next_attempt_at)).where(col(DeletionRow.state) == _PENDING)
        return (await self._s.exec(stmt)).one()


def _view(row: DeletionRow) -> DeletionView:
    return DeletionView(
        id=row.id,
        recording_id=row.recording_id,
        meeting_id=row.meeting_id,
        scope=DeletionScope(row.scope),
        reason=DeletionReason(row.reason),
        state=DeletionState(row.state),
        keys=list(row.keys),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        daily_outcome=row.daily_outcome,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )
