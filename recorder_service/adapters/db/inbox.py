"""InboxRepository: durable store of Daily webhook events. Never commits."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import ARRAY, String, any_, bindparam, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.prebuilt import StatementRunner, prebuilt
from recorder_service.adapters.db.statements import insert_for, newest_first
from recorder_service.adapters.db.tables import InboxEventRow
from recorder_service.adapters.db.types import utcnow
from recorder_service.core.models import StoredEvent
from recorder_service.core.statuses import APPLICABLE_STATES, InboxState

_TABLE: Any = InboxEventRow.__table__  # type: ignore[attr-defined]


class InboxRecord(msgspec.Struct, kw_only=True):
    """A new inbox row: what ingest writes (a plain struct; building the ORM model per request
    costs more than the rest of the row's work)."""

    id: str
    event_type: str | None
    state: InboxState
    body: bytes
    received_at: datetime
    source: str = "webhook"
    room_name: str | None = None
    detail: str | None = None
    traceparent: str | None = None


_RECORD_FIELDS = InboxRecord.__struct_fields__


class InboxOutcome(msgspec.Struct, frozen=True):
    """What applying an event came to: its new state, and the meeting and recording it found."""

    event_id: str
    state: InboxState
    meeting_id: str | None = None
    recording_id: str | None = None
    detail: str | None = None


class LockedEvent(msgspec.Struct, frozen=True):
    """A stored event, read to be applied."""

    id: str
    event_type: str | None
    state: InboxState
    body: bytes
    source: str
    traceparent: str | None


_LOCKED_FIELDS = LockedEvent.__struct_fields__
# Built once: applying an event runs both.
_LOCK: Any = prebuilt(
    select(*(_TABLE.c[name] for name in _LOCKED_FIELDS))
    .where(_TABLE.c.id == bindparam("event_id"))
    .with_for_update()
)
# A batch's events, locked in one statement, in id order (PostgreSQL; SQLite locks the database).
_LOCK_MANY: Any = prebuilt(
    select(*(_TABLE.c[name] for name in _LOCKED_FIELDS))
    .where(_TABLE.c.id == any_(bindparam("event_ids", type_=ARRAY(String))))
    .order_by(_TABLE.c.id)
    .with_for_update()
)
# SET state, detail and processed_at from the parameters; a meeting or recording found
# earlier is kept when this apply found none.
_FINISH: Any = prebuilt(
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("where_id"))
    .values(
        attempts=_TABLE.c.attempts + 1,
        meeting_id=func.coalesce(bindparam("found_meeting_id", type_=String), _TABLE.c.meeting_id),
        recording_id=func.coalesce(bindparam("found_recording_id", type_=String), _TABLE.c.recording_id),
    )
)


def _locked(row: Any) -> LockedEvent:
    event_id, event_type, state, body, source, traceparent = row
    return LockedEvent(event_id, event_type, InboxState(state), body, source, traceparent)


def _finish_params(outcome: InboxOutcome, now: datetime) -> dict[str, Any]:
    return {
        "state": outcome.state.value,
        "detail": outcome.detail,
        "processed_at": now,
        "found_meeting_id": outcome.meeting_id,
        "found_recording_id": outcome.recording_id,
        "where_id": outcome.event_id,
    }


def _column(value: object) -> object:
    return value.value if isinstance(value, InboxState) else value


def inbox_values(records: Sequence[InboxRecord]) -> list[dict[str, Any]]:
    return [{name: _column(getattr(r, name)) for name in _RECORD_FIELDS} | {"attempts": 0} for r in records]


@functools.cache
def insert_if_absent(dialect: str) -> Any:
    """`INSERT … ON CONFLICT (id) DO NOTHING RETURNING id`, one statement per dialect. Executed
    with a list of rows (distinct ids), SQLAlchemy sends them as one multi-row INSERT
    ("insertmanyvalues") from a statement compiled once."""
    return insert_for(dialect)(_TABLE).on_conflict_do_nothing(index_elements=["id"]).returning(_TABLE.c.id)


# PostgreSQL: the writer sends a batch straight to psycopg on its own connection, as a multi-row
# VALUES list whose text is built once per batch size (the server prepares it after a few uses):
# about half the CPU of SQLAlchemy's insertmanyvalues, and less than one array per column
# (docs/performance.md). The placeholders are PostgreSQL's own ($1, $2, ...), sent through a raw
# cursor: psycopg converts `%s` queries of more than 50 parameters on every execution (it caches
# only smaller ones), a tenth of a webhook's acknowledgement CPU at 64 senders.
_COLUMNS = len(_RECORD_FIELDS)


@functools.cache
def pg_batch_insert(rows: int) -> str:
    """`INSERT … VALUES (…), (…) ON CONFLICT (id) DO NOTHING RETURNING id` for `rows` rows, with
    $n placeholders (for a raw cursor). Only the constant column names are interpolated; every
    value is a bound parameter."""
    values = ", ".join(
        "(" + ", ".join(f"${r * _COLUMNS + c + 1}" for c in range(_COLUMNS)) + ", 0)" for r in range(rows)
    )
    return (
        f"INSERT INTO inbox_events ({', '.join(_RECORD_FIELDS)}, attempts) VALUES {values} "  # noqa: S608
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    )


def pg_batch_parameters(records: Sequence[InboxRecord]) -> list[Any]:
    """pg_batch_insert(len(records))'s parameters, row after row."""
    return [_column(getattr(r, name)) for r in records for name in _RECORD_FIELDS]


class InboxRepository:
    def __init__(self, session: AsyncSession, runner: StatementRunner | None = None) -> None:
        self._s = session
        self._run = runner or StatementRunner(session)

    async def add_if_absent(self, row: InboxRecord) -> bool:
        """True when stored; False when an event with that id was already there (a redelivery)."""
        stmt = insert_if_absent(self._s.get_bind().dialect.name).values(inbox_values([row])[0])
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        return (await self._s.exec(stmt)).first() is not None

    async def lock(self, event_id: str) -> LockedEvent | None:
        """The event, locked until the transaction ends (FOR UPDATE; SQLite locks the database)."""
        row = await self._run.first(_LOCK, {"event_id": event_id})
        return _locked(row) if row is not None else None

    async def lock_many(self, event_ids: Sequence[str]) -> dict[str, LockedEvent]:
        """The events found among `event_ids`, each locked until the transaction ends: on
        PostgreSQL in one statement, in id order (two batches sharing events wait for each
        other instead of deadlocking); on SQLite, which locks the database, one by one."""
        if self._run.dialect_name != "postgresql":
            found = [await self.lock(event_id) for event_id in event_ids]
            return {e.id: e for e in found if e is not None}
        rows = await self._run.rows(_LOCK_MANY, {"event_ids": list(event_ids)})
        return {row.id: _locked(row) for row in rows}

    async def finish(self, outcome: InboxOutcome) -> None:
        """Records the outcome of one apply; a meeting or recording found earlier is kept."""
        await self._run.rowcount(_FINISH, _finish_params(outcome, utcnow()))

    async def finish_many(self, outcomes: Sequence[InboxOutcome]) -> None:
        """Records several outcomes; on PostgreSQL sent together (one round trip)."""
        now = utcnow()
        await self._run.many(_FINISH, [_finish_params(o, now) for o in outcomes])

    async def applicable_ids(
        self,
        *,
        room_name: str | None = None,
        received_before: datetime | None = None,
        received_after: datetime | None = None,
        limit: int = 500,
        states: Sequence[InboxState] = APPLICABLE_STATES,
    ) -> Sequence[str]:
        stmt = select(InboxEventRow.id).where(col(InboxEventRow.state).in_([s.value for s in states]))
        if room_name is not None:
            # recording.started carries no room name: those are matched by instanceId instead.
            stmt = stmt.where(
                or_(col(InboxEventRow.room_name) == room_name, col(InboxEventRow.room_name).is_(None))
            )
        if received_before is not None:
            stmt = stmt.where(col(InboxEventRow.received_at) < received_before)
        if received_after is not None:
            stmt = stmt.where(col(InboxEventRow.received_at) >= received_after)
        stmt = stmt.order_by(col(InboxEventRow.received_at)).limit(limit)
        return list((await self._s.exec(stmt)).all())

    async def delete_done(
        self, *, received_before: datetime, states: Sequence[InboxState], source: str, limit: int
    ) -> int:
        """Deletes up to `limit` events of `source` in `states` received before the cutoff; the
        number deleted. Batched, so no transaction holds many rows."""
        ids = (
            select(InboxEventRow.id)
            .where(col(InboxEventRow.source) == source)
            .where(col(InboxEventRow.state).in_([s.value for s in states]))
            .where(col(InboxEventRow.received_at) < received_before)
            .limit(limit)
        )
        found = list((await self._s.exec(ids)).all())
        if found:
            await self._s.exec(delete(InboxEventRow).where(col(InboxEventRow.id).in_(found)))
        return len(found)

    async def list(
        self, *, state: InboxState | None, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[StoredEvent]:
        """Newest first by (received_at, id); with `before`, only rows after that key in this order."""
        stmt = select(InboxEventRow)
        if state is not None:
            stmt = stmt.where(col(InboxEventRow.state) == state.value)
        stmt = newest_first(
            stmt, col(InboxEventRow.received_at), col(InboxEventRow.id), before=before, limit=limit
        )
        return [
            StoredEvent(
                id=r.id,
                event_type=r.event_type,
                state=InboxState(r.state),
                source=r.source,
                room_name=r.room_name,
                meeting_id=r.meeting_id,
                recording_id=r.recording_id,
                detail=r.detail,
                attempts=r.attempts,
                received_at=r.received_at,
                processed_at=r.processed_at,
            )
            for r in (await self._s.exec(stmt)).all()
        ]
