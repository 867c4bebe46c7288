"""Domain values. Repositories return these, never table rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, NewType

import msgspec

MeetingId = NewType("MeetingId", str)
RecordingId = NewType("RecordingId", str)
RecordingType = Literal["cloud", "raw-tracks"]
RecordingStatus = Literal["starting", "recording", "ready", "failed"]
MeetingRecordingType = Literal["none", "local", "cloud"]

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


class Track(msgspec.Struct, frozen=True):
    type: str
    s3_key: str
    size: int | None = None


class Recording(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    meeting_id: str
    type: RecordingType
    audio_only: bool
    instance_id: str | None
    status: RecordingStatus
    daily_recording_id: str | None
    room_name: str | None
    s3_key: str | None
    duration: int | None
    tracks: tuple[Track, ...] | None
    start_ts: int | None
    started_at: datetime | None
    ready_at: datetime | None
    error: str | None


class Availability(msgspec.Struct, frozen=True):
    cloud_recording_available: bool
    cloud_recording_duration: int | None


def instance_id_for(meeting_id: str, recording_type: RecordingType) -> str:
    """Deterministic per meeting and type, so every participant and replica agrees."""
    if recording_type == "raw-tracks":
        return str(uuid.uuid5(RAW_TRACKS_NAMESPACE, meeting_id))
    try:
        return str(uuid.UUID(meeting_id))
    except ValueError:
        return str(uuid.uuid5(CLOUD_NAMESPACE, meeting_id))


def new_recording_id() -> RecordingId:
    return RecordingId(str(uuid.uuid4()))
