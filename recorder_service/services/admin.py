"""Operator views: stored Daily events, callbacks to Reflector, and deletion jobs."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

import msgspec

from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.core.deletions import DeletionView
from recorder_service.core.models import CallbackView, StoredEvent
from recorder_service.core.statuses import CallbackState, DeletionState, InboxState
from recorder_service.errors import CallbackNotFound, DeletionNotFound, InvalidInput


class EventList(msgspec.Struct, frozen=True):
    events: list[StoredEvent]
    # Set when older events remain: pass it back as `cursor` (with the same state) for the next page.
    next_cursor: str | None


class CallbackList(msgspec.Struct, frozen=True):
    callbacks: list[CallbackView]
    # Set when older callbacks remain: pass it back as `cursor` (with the same state) for the next page.
    next_cursor: str | None


class DeletionList(msgspec.Struct, frozen=True):
    deletions: list[DeletionView]
    # Set when older jobs remain: pass it back as `cursor` (with the same state) for the next page.
    next_cursor: str | None


CursorKind = Literal["events", "callbacks", "deletions"]
RowT = TypeVar("RowT")


class _Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The keyset position after a page: its last row's (timestamp, id). `kind` keeps an events
    cursor from being read as a callbacks one."""

    kind: CursorKind
    ts: Annotated[datetime, msgspec.Meta(tz=True)]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


_CURSOR_DECODER = msgspec.json.Decoder(_Cursor)
# Unpadded urlsafe base64 only: b64decode alone would also take "+", "/" and padding.
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,512}")
_BAD_CURSOR = "cursor is malformed: pass back a next_cursor from this endpoint unchanged"


def encode_cursor(kind: CursorKind, ts: datetime, row_id: str) -> str:
    raw = msgspec.json.encode(_Cursor(kind, ts, row_id))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: CursorKind, cursor: str) -> tuple[datetime, str]:
    """(timestamp in UTC, id) of the row the previous page ended with; InvalidInput otherwise."""
    if not _CURSOR_TEXT.fullmatch(cursor):
        raise InvalidInput(_BAD_CURSOR)
    try:
        decoded = _CURSOR_DECODER.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        # An offset at the edge of the datetime range (year 1 or 9999) overflows in UTC.
        ts = decoded.ts.astimezone(UTC)
    except (binascii.Error, msgspec.DecodeError, OverflowError, ValueError) as exc:
        raise InvalidInput(_BAD_CURSOR) from exc
    if decoded.kind != kind:
        raise InvalidInput(_BAD_CURSOR)
    return ts, decoded.id


StateT = TypeVar("StateT", InboxState, CallbackState, DeletionState)


def _state(state: str | None, states: type[StateT]) -> StateT | None:
    if state is None:
        return None
    try:
        return states(state)
    except ValueError:
        raise InvalidInput(f"state must be one of {', '.join(s.value for s in states)}") from None


async def list_events(db: Database, *, state: str | None, limit: int, cursor: str | None = None) -> EventList:
    """Newest first by (received_at, id); next_cursor is set when older events remain."""
    wanted = _state(state, InboxState)
    before = decode_cursor("events", cursor) if cursor is not None else None
    async with db.transaction() as uow:
        # One row more than asked tells whether another page exists.
        rows = await uow.inbox.list(state=wanted, limit=limit + 1, before=before)
    page, next_cursor = _page(rows, limit, "events", lambda r: (r.received_at, r.id))
    return EventList(list(page), next_cursor)


def _page(
    rows: Sequence[RowT], limit: int, kind: CursorKind, key: Callable[[RowT], tuple[datetime, str]]
) -> tuple[Sequence[RowT], str | None]:
    """The first `limit` of `limit + 1` rows, and the cursor after them when the extra row exists."""
    page = rows[:limit]
    return page, encode_cursor(kind, *key(page[-1])) if len(rows) > limit else None


async def list_callbacks(
    db: Database, *, state: str | None, limit: int, cursor: str | None = None
) -> CallbackList:
    """Newest first by (created_at, id); next_cursor is set when older callbacks remain."""
    wanted = _state(state, CallbackState)
    before = decode_cursor("callbacks", cursor) if cursor is not None else None
    async with db.transaction() as uow:
        rows = await uow.callbacks.list(state=wanted, limit=limit + 1, before=before)
    page, next_cursor = _page(rows, limit, "callbacks", lambda r: (r.created_at, r.id))
    return CallbackList(list(page), next_cursor)


async def retry_callback(db: Database, callback_id: str, now: datetime) -> CallbackView:
    """Makes a pending or dead callback due now (a delivered one is left as it is)."""
    async with db.transaction() as uow:
        view = await uow.callbacks.retry_now(callback_id, now)
        if view is None:
            raise CallbackNotFound(f"callback {callback_id} not found")
        return view


async def list_deletions(
    db: Database, *, state: str | None, limit: int, cursor: str | None = None
) -> DeletionList:
    """Newest first by (created_at, id); next_cursor is set when older jobs remain."""
    wanted = _state(state, DeletionState)
    before = decode_cursor("deletions", cursor) if cursor is not None else None
    async with db.transaction() as uow:
        rows = await uow.deletions.list(state=wanted, limit=limit + 1, before=before)
    page, next_cursor = _page(rows, limit, "deletions", lambda r: (r.created_at, r.id))
    return DeletionList(list(page), next_cursor)


async def retry_deletion(db: Database, deletion_id: str, now: datetime) -> DeletionView:
    """Makes a pending job due now (S3 is back and the backoff is long); others are left alone."""
    async with db.transaction() as uow:
        view = await uow.deletions.retry_now(deletion_id, now)
        if view is None:
            raise DeletionNotFound(f"deletion {deletion_id} not found")
        return view
