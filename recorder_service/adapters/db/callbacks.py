"""CallbackRepository: the outbox of callbacks to Reflector. Never commits."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.prebuilt import StatementRunner, prebuilt
from recorder_service.adapters.db.statements import insert_for, newest_first
from recorder_service.adapters.db.tables import CallbackAttemptRow, CallbackRow
from recorder_service.core.models import CallbackView, ClaimedCallback, OutgoingCallback
from recorder_service.core.statuses import CallbackState

_PENDING = CallbackState.PENDING.value

_CALLBACKS: Any = CallbackRow.__table__  # type: ignore[attr-defined]
_C: Any = _CALLBACKS.c
_ATTEMPTS: Any = CallbackAttemptRow.__table__  # type: ignore[attr-defined]


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect (values at execution)."""
    return prebuilt(insert_for(dialect)(_CALLBACKS).on_conflict_do_nothing().returning(_C.id))


# One statement leases a batch: the due rows, oldest first, locked and skipped by concurrent
# claimers (SKIP LOCKED on PostgreSQL; SQLite has one writer at a time), are updated and returned.
_DUE: Any = (
    select(_C.id)
    .where(
        _C.state == _PENDING,
        _C.next_attempt_at <= bindparam("now"),
        or_(_C.lease_until.is_(None), _C.lease_until < bindparam("now")),
    )
    .order_by(_C.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM: Any = prebuilt(
    update(_CALLBACKS)
    .where(_C.id.in_(_DUE))
    .values(lease_until=bindparam("lease_until"), lease_owner=bindparam("owner"))
    .returning(_C.id, _C.event_type, _C.meeting_id, _C.body, _C.attempts, _C.traceparent, _C.next_attempt_at)
)
_ADD_ATTEMPT: Any = prebuilt(
    insert(_ATTEMPTS).values(
        callback_id=bindparam("row_id"),
        attempted_at=bindparam("attempted_at"),
        status_code=bindparam("status_code"),
        error=bindparam("error"),
        duration_ms=bindparam("duration_ms"),
    )
)


class _Outcome:
    """An attempt's outcome, applied only while the lease is still ours: the attempt's row and
    the callback's update. On PostgreSQL one statement (the insert as a CTE of the update: one
    round trip, atomic without a transaction); SQLite, which has no such CTE, runs both."""

    def __init__(self, **outcome: Any) -> None:
        self.update = prebuilt(
            update(_CALLBACKS)
            .where(_C.id == bindparam("row_id"), _C.lease_owner == bindparam("owner"), _C.state == _PENDING)
            .values(
                attempts=_C.attempts + 1,
                last_status_code=bindparam("status_code"),
                last_error=bindparam("error"),
                lease_until=None,
                lease_owner=None,
                **outcome,
            )
            .returning(_C.id)
        )
        self.with_attempt = prebuilt(self.update.add_cte(_ADD_ATTEMPT.cte("attempt")))


_BACKLOG: Any = prebuilt(
    select(func.count(), func.min(_C.created_at), func.min(_C.next_attempt_at)).where(_C.state == _PENDING)
)

_DELIVERED = _Outcome(state=CallbackState.DELIVERED.value, delivered_at=bindparam("attempted_at"))
_DEAD = _Outcome(state=CallbackState.DEAD.value)
_RETRY = _Outcome(next_attempt_at=bindparam("next_attempt_at"))


class CallbackOutbox:
    """The outbox's own statements: claim a batch, record an attempt, read the backlog. Each is
    one statement, atomic on its own: run in autocommit (`Database.autocommit()`), they cost no
    BEGIN and COMMIT round trips; in a transaction they join it."""

    def __init__(self, runner: StatementRunner) -> None:
        self._run = runner

    async def claim_due(
        self, *, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[ClaimedCallback]:
        """Leases due rows. SKIP LOCKED lets replicas share the work on PostgreSQL; an expired
        lease (a killed process) makes a row claimable again."""
        rows = await self._run.rows(
            _CLAIM, {"now": now, "limit": limit, "lease_until": now + lease, "owner": owner}
        )
        return [
            ClaimedCallback(
                id=r.id,
                event_type=r.event_type,
                meeting_id=r.meeting_id,
                body=r.body,
                attempts=r.attempts,
                traceparent=r.traceparent,
            )
            for r in sorted(rows, key=lambda r: (r.next_attempt_at, r.id))  # oldest due first
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
        """Records the attempt and applies its outcome if we still hold the lease; False when we
        lost it (the attempt is recorded either way)."""
        params: dict[str, object] = {
            "row_id": row_id,
            "owner": owner,
            "attempted_at": attempted_at,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
        }
        if delivered:
            outcome = _DELIVERED
        elif next_attempt_at is None:
            outcome = _DEAD
        else:
            outcome, params["next_attempt_at"] = _RETRY, next_attempt_at
        if self._run.dialect_name == "postgresql":
            return await self._run.first(outcome.with_attempt, params) is not None
        await self._run.rowcount(_ADD_ATTEMPT, params)
        return await self._run.first(outcome.update, params) is not None

    async def backlog(self) -> tuple[int, datetime | None, datetime | None]:
        """Pending callbacks: how many, the oldest one's creation, the earliest next attempt."""
        row = await self._run.first(_BACKLOG)
        assert row is not None  # an aggregate always answers one row
        count, oldest, due = row
        return int(count), oldest, due


class CallbackRepository:
    def __init__(self, session: AsyncSession, runner: StatementRunner | None = None) -> None:
        self._s = session
        self._run = runner or StatementRunner(session)

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
        stmt = _enqueue_statement(self._run.dialect_name)
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        return await self._run.first(stmt, values) is not None

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
