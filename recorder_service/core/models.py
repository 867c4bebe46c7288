"""The service's values. Repositories and adapters take and return these; table rows and
Daily's wire format stay in their adapters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from recorder_service.core.statuses import CallbackState, InboxState, RecordingStatus

RecordingType = Literal["cloud", "raw-tracks"]

# Reflector's frontend derives raw-tracks instanceIds the same way (contract §1).
RAW_TRACKS_NAMESPACE = uuid.UUID("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
# Ours, for cloud instanceIds of meeting ids that are not UUIDs.
CLOUD_NAMESPACE = uuid.UUID("6b0f3f1e-4c52-5d0a-9a51-3c7d2f4e8b90")


class Meeting(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    room_name: str
    recording_type: str
    start_date: datetime
    end_date: datetime | None
    # False: nobody wants the meeting's video (contract §5): no cloud recording is started or
    # kept, and the video files of its raw-tracks recordings are deleted.
    store_video: bool = True


class Track(msgspec.Struct, frozen=True):
    # "audio" or "video" today; kept as str so a new kind does not reject the whole recording.
    type: str
    s3_key: str
    size: int | None = None


class Recording(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    meeting_id: str
    type: RecordingType
    status: RecordingStatus
    audio_only: bool = False
    instance_id: str | None = None
    daily_recording_id: str | None = None
    room_name: str | None = None
    s3_key: str | None = None
    duration: int | None = None
    tracks: tuple[Track, ...] | None = None
    start_ts: int | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    error: str | None = None


class Availability(msgspec.Struct, frozen=True):
    cloud_recording_available: bool
    cloud_recording_duration: int | None


class RecordingReady(msgspec.Struct, frozen=True, kw_only=True):
    """A finished Daily recording, whether a webhook or Daily's REST API told us."""

    daily_recording_id: str
    room_name: str
    recording_type: RecordingType
    audio_only: bool
    start_ts: int
    duration: int | None
    # Cloud: the object key. Raw-tracks: the key prefix (webhook) or absent (REST).
    s3_key: str | None
    tracks: tuple[Track, ...] | None
    mtg_session_id: str | None = None

    @property
    def audio_track_keys(self) -> tuple[str, ...]:
        """Audio track keys in Daily's order (the order the callback contract promises)."""
        return tuple(t.s3_key for t in self.tracks or () if t.type == "audio")


class OutgoingCallback(msgspec.Struct, frozen=True, kw_only=True):
    """A callback to Reflector, queued in the transaction that caused it."""

    id: str  # the Standard Webhooks message id, kept across retries
    event_type: str
    meeting_id: str
    recording_id: str
    body: bytes
    created_at: datetime
    # Every delivery attempt continues this trace (the webhook's, or the sweep's).
    traceparent: str | None = None


class ClaimedCallback(msgspec.Struct, frozen=True, kw_only=True):
    """A due callback leased to one delivery worker."""

    id: str
    event_type: str
    meeting_id: str
    body: bytes
    attempts: int
    traceparent: str | None


class CallbackView(msgspec.Struct, frozen=True):
    id: str
    event_type: str
    meeting_id: str
    recording_id: str
    state: CallbackState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class StoredEvent(msgspec.Struct, frozen=True):
    id: str
    event_type: str | None
    state: InboxState
    source: str
    room_name: str | None
    meeting_id: str | None
    recording_id: str | None
    detail: str | None
    attempts: int
    received_at: datetime
    processed_at: datetime | None


def instance_id_for(meeting_id: str, recording_type: RecordingType) -> str:
    """Deterministic per meeting and type, so every participant and replica agrees."""
    if recording_type == "raw-tracks":
        return str(uuid.uuid5(RAW_TRACKS_NAMESPACE, meeting_id))
    try:
        return str(uuid.UUID(meeting_id))
    except ValueError:
        return str(uuid.uuid5(CLOUD_NAMESPACE, meeting_id))


def type_of_instance(meeting_id: str, instance_id: str | None) -> RecordingType | None:
    """Which of the meeting's derived instanceIds this is, if either."""
    if instance_id is None:
        return None
    types: tuple[RecordingType, ...] = ("raw-tracks", "cloud")
    for rec_type in types:
        if instance_id_for(meeting_id, rec_type) == instance_id:
            return rec_type
    return None


def new_recording_id() -> str:
    return str(uuid.uuid4())
