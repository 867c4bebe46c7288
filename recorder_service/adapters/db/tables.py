"""SQLModel tables. Only adapters/db imports these: repositories answer with core values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, Index, LargeBinary, String, Text, UniqueConstraint, text, true
from sqlmodel import Field, SQLModel

from recorder_service.adapters.db.types import UTCDateTime, utcnow
from recorder_service.core.statuses import (
    ACTIVE_STATUSES,
    CallbackState,
    DeletionState,
    InboxState,
    RecordingStatus,
)

# The running session of (meeting, type): at most one (core/statuses.py says which are running).
_ACTIVE_WHERE = text("status IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES)))


def _ts(nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class MeetingRow(SQLModel, table=True):
    __tablename__ = "meetings"

    id: str = Field(sa_column=Column(String(128), primary_key=True))
    room_name: str = Field(sa_column=Column(String(255), nullable=False, index=True))
    recording_type: str = Field(sa_column=Column(String(16), nullable=False))
    start_date: datetime = Field(sa_column=_ts())
    end_date: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Meetings registered before the column existed keep their video (the contract's default).
    store_video: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default=true()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class RecordingRow(SQLModel, table=True):
    """One Daily recording session of a meeting (a new one after every stop/start)."""

    __tablename__ = "recordings"
    __table_args__ = (
        # At most one running session per (meeting, type): the database half of the start claim.
        Index(
            "uq_recordings_one_active",
            "meeting_id",
            "type",
            unique=True,
            sqlite_where=_ACTIVE_WHERE,
            postgresql_where=_ACTIVE_WHERE,
        ),
        Index("ix_recordings_meeting_type", "meeting_id", "type"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    meeting_id: str = Field(sa_column=Column(String(128), nullable=False))
    # "cloud" or "raw-tracks"; cloud-audio-only is a cloud recording with audio_only set.
    type: str = Field(sa_column=Column(String(16), nullable=False))
    audio_only: bool = Field(default=False)
    instance_id: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    status: RecordingStatus = Field(sa_column=Column(String(16), nullable=False))
    daily_recording_id: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True, unique=True)
    )
    room_name: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    s3_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duration: int | None = Field(default=None)
    tracks: list[dict[str, object]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    start_ts: int | None = Field(default=None)
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ready_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class InboxEventRow(SQLModel, table=True):
    """Every correctly signed Daily webhook, stored before we answer 200."""

    __tablename__ = "inbox_events"

    # Daily's event id; for bodies without one, "sha256:<hex of body>".
    id: str = Field(sa_column=Column(String(255), primary_key=True))
    event_type: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    state: InboxState = Field(sa_column=Column(String(16), nullable=False, index=True))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    source: str = Field(default="webhook", sa_column=Column(String(16), nullable=False))
    room_name: str | None = Field(default=None, sa_column=Column(String(255), nullable=True, index=True))
    meeting_id: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    recording_id: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    traceparent: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    attempts: int = Field(default=0)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class CallbackRow(SQLModel, table=True):
    """Outbox: a callback to Reflector, written in the transaction that caused it."""

    __tablename__ = "callbacks"
    __table_args__ = (
        UniqueConstraint("recording_id", "event_type", name="uq_callbacks_recording_event"),
        Index("ix_callbacks_due", "state", "next_attempt_at"),
    )

    # The Standard Webhooks message id ("msg_..."), kept across retries.
    id: str = Field(sa_column=Column(String(64), primary_key=True))
    event_type: str = Field(sa_column=Column(String(64), nullable=False))
    meeting_id: str = Field(sa_column=Column(String(128), nullable=False, index=True))
    recording_id: str = Field(sa_column=Column(String(36), nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: CallbackState = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_status_code: int | None = Field(default=None)
    traceparent: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class CallbackAttemptRow(SQLModel, table=True):
    __tablename__ = "callback_attempts"

    id: int | None = Field(default=None, primary_key=True)
    callback_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    attempted_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    status_code: int | None = Field(default=None)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duration_ms: int = Field(default=0)


class DeletionRow(SQLModel, table=True):
    """Outbox of S3 removals: written in the transaction that deletes its recording (or, for the
    video tracks of a meeting without video, makes it ready), worked off by the deletion loop."""

    __tablename__ = "deletions"
    __table_args__ = (
        # One job per recording and scope: a repeated request or retention pass adds nothing.
        UniqueConstraint("recording_id", "scope", name="uq_deletions_recording_scope"),
        Index("ix_deletions_due", "state", "next_attempt_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    recording_id: str = Field(sa_column=Column(String(36), nullable=False))
    meeting_id: str = Field(sa_column=Column(String(128), nullable=False, index=True))
    scope: str = Field(sa_column=Column(String(16), nullable=False))
    reason: str = Field(sa_column=Column(String(16), nullable=False))
    state: DeletionState = Field(sa_column=Column(String(16), nullable=False))
    keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # len(keys), kept so the backlog gauge is one SUM on either database.
    object_count: int = Field(default=0)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    daily_outcome: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    completed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ServiceStateRow(SQLModel, table=True):
    """Small named values that must survive restarts (e.g. the reconciler's cursor)."""

    __tablename__ = "service_state"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
