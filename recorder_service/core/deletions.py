"""Deleting recordings from the bucket: which objects belong to a recording, what a meeting
without video keeps, and the values of a deletion job (the outbox of S3 removals)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import msgspec

from recorder_service.core.models import RecordingType, Track
from recorder_service.core.statuses import DeletionState


class DeletionReason(StrEnum):
    # An assignment, not a docstring: `python -OO` (the image) keeps it for the OpenAPI document.
    __doc__ = "Why objects are deleted: the `reason` of the recording.deleted callback (contract §7)."

    REQUEST = "request"
    RETENTION = "retention"
    STORE_VIDEO_OFF = "store_video_off"


class DeletionScope(StrEnum):
    # Every object of the recording; the recording is `deleted` and Reflector is told.
    RECORDING = "recording"
    # Only the video tracks of a raw-tracks recording of a meeting without video: the
    # recording stays ready with its audio, and nothing is announced.
    VIDEO = "video"


VIDEO_TRACK = "video"


def recording_object_keys(
    rec_type: RecordingType, s3_key: str | None, tracks: Iterable[Track] | None
) -> tuple[str, ...]:
    """Every object of a recording. A cloud recording is one object; a raw-tracks recording is its
    track files (its `s3_key` is only the prefix they share, not an object)."""
    if rec_type == "cloud":
        return (s3_key,) if s3_key else ()
    return tuple(dict.fromkeys(t.s3_key for t in tracks or () if t.s3_key))


def split_video_tracks(tracks: Iterable[Track] | None) -> tuple[tuple[Track, ...], tuple[str, ...]]:
    """(the tracks a meeting without video keeps, the keys of the video tracks to delete)."""
    kept: list[Track] = []
    video: list[str] = []
    for track in tracks or ():
        if track.type == VIDEO_TRACK:
            video.append(track.s3_key)
        else:
            kept.append(track)
    return tuple(kept), tuple(dict.fromkeys(k for k in video if k))


def new_deletion_id() -> str:
    return str(uuid.uuid4())


class NewDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """A deletion job, written in the transaction that marks its recording deleted (or, for
    video tracks, ready)."""

    id: str
    recording_id: str
    meeting_id: str
    scope: DeletionScope
    reason: DeletionReason
    state: DeletionState
    keys: tuple[str, ...]
    created_at: datetime


class ClaimedDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """A due job leased to one worker."""

    id: str
    recording_id: str
    meeting_id: str
    scope: DeletionScope
    reason: DeletionReason
    keys: tuple[str, ...]
    attempts: int


class DeletionView(msgspec.Struct, frozen=True):
    """A job as the admin list shows it."""

    id: str
    recording_id: str
    meeting_id: str
    scope: DeletionScope
    reason: DeletionReason
    state: DeletionState
    keys: list[str]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    # Daily's copy of the recording (DELETE /recordings/:id, best effort): deleted, not_found,
    # failed, or null (not tried: video tracks only, or no Daily id known).
    daily_outcome: str | None
    created_at: datetime
    completed_at: datetime | None
