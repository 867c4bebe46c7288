"""CallbackRepository: the outbox of callbacks to Reflector. Never commits."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.statements import insert_for, newest_first
from recorder_service.adapters.db.tables import CallbackAttemptRow, CallbackRow
from recorder_service.core.models import CallbackView, ClaimedCallback, OutgoingCallback
from recorder_service.core.statuses import CallbackState

_PENDING = CallbackState.PENDING.value

_CALLBACKS: Any = CallbackRow.__table__  # type: ignore[attr-defined]


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect (values at execution)."""
    return insert_for(dialect)(_CALLBACKS).on_conflict_do_nothing().returning(_CALLBACKS.c.id)


class CallbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def enqueue(self, callback: OutgoingCallback) -> bool:
        """One callback per (recording, event type): a second enqueue is a no-op (False)."""
        values = {name: getattr(callback, name) for name in OutgoingCallback.__struct_fields__} | {
            "state": _PENDING,
            "attempts": 0,
            "next_attempt_at": callback.created_at,
            "lease_until": None,
            "lease_owner": None,
            "last_error": None,
            "last_status_code": None,
            "delivered_at": None,
        }
        stmt = _enqueue_statement(self._s.get_bind().dialect.name)
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        return (await self._s.exec(stmt, params=values)).first() is not None

    async def claim_due(
        self, *, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[ClaimedCallback]:
        """Leases due rows. SKIP LOCKED lets replicas share the work on PostgreSQL; an expired
        lease (a killed process) makes a row claimable again."""
        stmt = (
            select(CallbackRow)
            .where(
                col(CallbackRow.state) == _PENDING,
                col(CallbackRow.next_attempt_at) <= now,
                or_(col(CallbackRow.lease_until).is_(None), col(CallbackRow.lease_until) < now),
            )
            .order_by(col(CallbackRow.next_attempt_at))
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
            ClaimedCallback(
                id=r.id,
                event_type=r.event_type,
                meeting_id=r.meeting_id,
                body=r.body,
                attempts=r.attempts,
                traceparent=r.traceparent,
            )
            for r in rows
        ]

    async def record_attempt(
        self,
        row_id: str,
        *,
        owner: str,
        attempted_at: datetime,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        delivered: bool,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Applies one attempt's outcome if we still hold the lease; False when we lost it."""
        self._s.add(
            CallbackAttemptRow(
                callback_id=row_id,
                attempted_at=attempted_at,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        values: dict[str, object] = {
            "attempts": CallbackRow.attempts + 1,
            "last_status_code": status_code,
            "last_error": error,
            "lease_until": None,
            "lease_owner": None,
        }
        if delivered:
            values |= {"state": CallbackState.DELIVERED.value, "delivered_at": attempted_at}
        elif next_attempt_at is None:
            values |= {"state": CallbackState.DEAD.value}
        else:
            values |= {"next_attempt_at": next_attempt_at}
        result = await self._s.exec(
            update(CallbackRow)
            .where(
                col(CallbackRow.id) == row_id,
                col(CallbackRow.lease_owner) == owner,
                col(CallbackRow.state) == _PENDING,
            )
            .values(**values)
        )
        await self._s.flush()
        return bool(result.rowcount)

    async def release(self, row_id: str, owner: str) -> None:
        await self._s.exec(
            update(CallbackRow)
            .where(col(CallbackRow.id) == row_id, col(CallbackRow.lease_owner) == owner)
            .values(lease_until=None, lease_owner=None)
        )

    async def retry_now(self, callback_id: str, now: datetime) -> CallbackView | None:
        row = await self._s.get(CallbackRow, callback_id, with_for_update=True)
        if row is None:
            return None
        if row.state != CallbackState.DELIVERED:
            row.state = CallbackState.PENDING
            row.next_attempt_at = now
            row.lease_until = None
            row.lease_owner = None
            self._s.add(row)
            await self._s.flush()
        return _view(row)

    async def list(
        self, *, state: CallbackState | None, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[CallbackView]:
        """Newest first by (created_at, id); with `before`, only rows after that key in this order."""
        stmt = select(CallbackRow)
        if state is not None:
            stmt = stmt.where(col(CallbackRow.state) == state.value)
        stmt = newest_first(
            stmt, col(CallbackRow.created_at), col(CallbackRow.id), before=before, limit=limit
        )
        return [_view(row) for row in (await self._s.exec(stmt)).all()]

    async def pending_stats(self) -> tuple[int, datetime | None]:
        stmt = select(func.count(), func.min(CallbackRow.created_at)).where(
            col(CallbackRow.state) == _PENDING
        )
        count, oldest = (await self._s.exec(stmt)).one()
        return int(count), oldest

    async def next_due_at(self) -> datetime | None:
        stmt = select(func.min(CallbackRow.next_attempt_at)).where(col(CallbackRow.state) == _PENDING)
        return (await self._s.exec(stmt)).one()


def _view(row: CallbackRow) -> CallbackView:
    return CallbackView(
        id=row.id,
        event_type=row.event_type,
        meeting_id=row.meeting_id,
        recording_id=row.recording_id,
        state=CallbackState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_status_code=row.last_status_code,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
