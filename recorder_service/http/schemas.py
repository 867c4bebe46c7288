"""Request and response bodies of our API (forbid_unknown_fields: client typos fail)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar.params import PathParameter

from recorder_service.core.models import Availability, Meeting, Recording
from recorder_service.core.statuses import ApiRecordingStatus, api_status

MEETING_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
# A Daily room name (contract §5): it becomes a segment of Daily API paths.
ROOM_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"

# Validated by the valid_meeting_id guard (400), so the pattern is documentation here.
MeetingIdPath = Annotated[
    str, PathParameter(name="meeting_id", description="Reflector's meeting id: 1-128 of [A-Za-z0-9._:-]")
]


class StartRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type: Literal["raw-tracks", "cloud"]
    # Advisory only: the service always uses the derived instanceId (contract §1).
    instanceId: uuid.UUID | None = None


class StartResponse(msgspec.Struct, frozen=True):
    status: Literal["started", "already_active"]
    type: Literal["raw-tracks", "cloud"]
    instanceId: str
    meeting_id: str


class MeetingPut(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    room_name: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=ROOM_NAME_PATTERN)]
    recording_type: Literal["none", "local", "cloud"]
    start_date: datetime
    end_date: datetime | None = None
    # False: no cloud recording is started or kept, and raw tracks keep only their audio.
    store_video: bool = True


class TrackOut(msgspec.Struct, frozen=True):
    type: str
    s3_key: str
    size: int | None


class RecordingOut(msgspec.Struct, frozen=True):
    id: str
    type: str
    instance_id: str | None
    status: ApiRecordingStatus
    daily_recording_id: str | None
    s3_key: str | None
    duration: int | None
    tracks: list[TrackOut]
    started_at: datetime | None
    ready_at: datetime | None
    error: str | None


class MeetingRecordings(msgspec.Struct, frozen=True):
    meeting_id: str
    room_name: str
    recording_type: str
    start_date: datetime
    end_date: datetime | None
    store_video: bool
    cloud_recording_available: bool
    cloud_recording_duration: int | None
    recordings: list[RecordingOut]


class AvailabilityOut(msgspec.Struct, frozen=True):
    cloud_recording_available: bool
    cloud_recording_duration: int | None


class AvailabilityResponse(msgspec.Struct, frozen=True):
    meetings: dict[str, AvailabilityOut]


class CloudRecordingLinkOut(msgspec.Struct, frozen=True):
    # Presigned S3 GET URL of the recording, like the playback redirect's Location.
    url: str
    # This service's playback path for the same recording, with a fresh playback token.
    playback_url: str
    # Both URLs work until then (RECORDER_PRESIGN_TTL_SECONDS, at most 24 h).
    expires_at: datetime
    duration: int | None
    content_type: Literal["video/mp4", "audio/mp4"]


class RecordingsDeleted(msgspec.Struct, frozen=True):
    # Every recording the request matched, those deleted earlier included (idempotent).
    deleted: list[str]


class Health(msgspec.Struct, frozen=True):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


def as_utc(value: datetime) -> datetime:
    """ISO-8601 without an offset is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def recording_out(r: Recording) -> RecordingOut:
    return RecordingOut(
        id=r.id,
        type="cloud-audio-only" if r.audio_only else r.type,
        instance_id=r.instance_id,
        status=api_status(r.status),
        daily_recording_id=r.daily_recording_id,
        s3_key=r.s3_key,
        duration=r.duration,
        tracks=[TrackOut(t.type, t.s3_key, t.size) for t in r.tracks or ()],
        started_at=r.started_at,
        ready_at=r.ready_at,
        error=r.error,
    )


def meeting_recordings(
    meeting: Meeting, recordings: list[Recording], availability: Availability
) -> MeetingRecordings:
    return MeetingRecordings(
        meeting_id=meeting.id,
        room_name=meeting.room_name,
        recording_type=meeting.recording_type,
        start_date=meeting.start_date,
        end_date=meeting.end_date,
        store_video=meeting.store_video,
        cloud_recording_available=availability.cloud_recording_available,
        cloud_recording_duration=availability.cloud_recording_duration,
        recordings=[recording_out(r) for r in recordings],
    )
