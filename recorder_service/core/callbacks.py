"""Callbacks to Reflector: payloads (CONTRACT §7) and Standard Webhooks signing.

Signature: `v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>` where key is the base64 part of the
`whsec_…` secret. The message id is kept across retries so the receiver can deduplicate, and the
timestamp is re-taken per attempt (receivers reject stale ones), so both are inputs here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import TypeAlias

import msgspec

from recorder_service.core.hmac_keys import decode_base64_key
from recorder_service.core.models import RecordingReady

_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def decode_callback_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError if malformed."""
    return decode_base64_key(secret.strip().removeprefix(_SECRET_PREFIX), what="callback secret")


class CallbackSigner:
    def __init__(self, secret: str) -> None:
        self._key = decode_callback_secret(secret)

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for one delivery attempt."""
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
        }


# ---------------------------------------------------------------------------------------------- payloads


class CallbackTrack(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    s3_key: str
    size: int | None


class RawTracksReadyData(msgspec.Struct, frozen=True, kw_only=True):
    meeting_id: str
    room_name: str
    recording_id: str  # Daily's
    bucket: str
    # Audio track keys, in Daily's order.
    track_keys: tuple[str, ...]
    tracks: tuple[CallbackTrack, ...]
    start_ts: int
    duration: int | None


class CloudReadyData(msgspec.Struct, frozen=True, kw_only=True):
    meeting_id: str
    room_name: str
    recording_id: str  # Daily's
    bucket: str
    s3_key: str
    duration: int | None
    start_ts: int


class RecordingDeletedData(msgspec.Struct, frozen=True, kw_only=True):
    meeting_id: str
    recording_id: str  # Daily's
    type: str  # "cloud" or "raw-tracks"
    reason: str  # "request", "retention" or "store_video_off"


class CallbackEnvelope(msgspec.Struct, frozen=True, tag_field="type"):
    timestamp: str  # ISO-8601, UTC


class RawTracksReadyCallback(CallbackEnvelope, frozen=True, tag="recording.raw_tracks_ready"):
    data: RawTracksReadyData


class CloudReadyCallback(CallbackEnvelope, frozen=True, tag="recording.cloud_ready"):
    data: CloudReadyData


class RecordingDeletedCallback(CallbackEnvelope, frozen=True, tag="recording.deleted"):
    data: RecordingDeletedData


class DailyEventCallback(CallbackEnvelope, frozen=True, tag="daily.event"):
    """A Daily event relayed to Reflector (RECORDER_FORWARD_DAILY_EVENTS): `data` is the event's
    JSON object exactly as Daily sent it."""

    data: msgspec.Raw


Callback: TypeAlias = (
    RawTracksReadyCallback | CloudReadyCallback | RecordingDeletedCallback | DailyEventCallback
)
CallbackData: TypeAlias = RawTracksReadyData | CloudReadyData | RecordingDeletedData

_callback_encoder = msgspec.json.Encoder()
callback_decoder = msgspec.json.Decoder(Callback)


def iso_timestamp(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("callback timestamp must be timezone-aware")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_callback(data: CallbackData, at: datetime) -> Callback:
    timestamp = iso_timestamp(at)
    if isinstance(data, RawTracksReadyData):
        return RawTracksReadyCallback(timestamp=timestamp, data=data)
    if isinstance(data, RecordingDeletedData):
        return RecordingDeletedCallback(timestamp=timestamp, data=data)
    return CloudReadyCallback(timestamp=timestamp, data=data)


def encode_callback(data: CallbackData, at: datetime) -> bytes:
    return _callback_encoder.encode(build_callback(data, at))


def encode_daily_event(event_body: bytes, at: datetime) -> bytes:
    """The `daily.event` callback of one stored Daily event (its body is a JSON object)."""
    return _callback_encoder.encode(
        DailyEventCallback(timestamp=iso_timestamp(at), data=msgspec.Raw(event_body.strip()))
    )


# Outbox rows are unique per (subject, type): a relayed event's subject is derived from Daily's
# event id, so an event that is applied again (an orphan retried, a redelivery) is relayed once.
_RELAY_NAMESPACE = uuid.UUID("5f0c7d4e-2b1a-4e8f-9c3d-6a7b8c9d0e1f")


def relay_subject_id(event_id: str) -> str:
    return str(uuid.uuid5(_RELAY_NAMESPACE, event_id))


def raw_tracks_ready_data(*, meeting_id: str, bucket: str, recording: RecordingReady) -> RawTracksReadyData:
    tracks = recording.tracks or ()
    return RawTracksReadyData(
        meeting_id=meeting_id,
        room_name=recording.room_name,
        recording_id=recording.daily_recording_id,
        bucket=bucket,
        track_keys=recording.audio_track_keys,
        tracks=tuple(CallbackTrack(type=t.type, s3_key=t.s3_key, size=t.size) for t in tracks),
        start_ts=recording.start_ts,
        duration=recording.duration,
    )


def cloud_ready_data(*, meeting_id: str, bucket: str, recording: RecordingReady) -> CloudReadyData:
    if recording.recording_type != "cloud" or recording.s3_key is None:
        raise ValueError("a cloud_ready callback needs a cloud recording with an s3 key")
    return CloudReadyData(
        meeting_id=meeting_id,
        room_name=recording.room_name,
        recording_id=recording.daily_recording_id,
        bucket=bucket,
        s3_key=recording.s3_key,
        duration=recording.duration,
        start_ts=recording.start_ts,
    )
