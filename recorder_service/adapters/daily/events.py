"""Daily's webhook events and REST recording objects, decoded at the edge.

Outside facts (docs/daily-api.md §5, §9, §10):
- integers sometimes arrive as floats, so every timestamp, duration and size is decoded as a float and
  exposed as whole seconds/bytes where the domain wants ints;
- unknown fields are ignored so a new Daily field never loses an event;
- the caller stores the raw body before decoding, so a rejected event is kept for inspection, not lost.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Literal, TypeAlias, get_args

import msgspec

from recorder_service.core.models import RecordingReady, RecordingType
from recorder_service.core.models import Track as CoreTrack
from recorder_service.errors import EventParseError, RecordingParseError

# Daily documents recordings of up to three hours; a week is far beyond anything real.
MAX_RECORDING_DURATION_S = 7 * 24 * 3600

NonBlank = Annotated[str, msgspec.Meta(min_length=1, pattern=r"\S")]
# Up to 2100-01-01: a larger "timestamp" is garbage, and datetime would overflow on it.
UnixSeconds = Annotated[float, msgspec.Meta(ge=0, le=4_102_444_800)]
RecordingDuration = Annotated[float, msgspec.Meta(ge=0, le=MAX_RECORDING_DURATION_S)]
ReadyType = Literal["cloud", "cloud-audio-only", "raw-tracks"]


def whole_seconds(value: float) -> int:
    # Daily's seconds are whole numbers that sometimes arrive as floats (1708972279.96): truncate.
    return math.floor(value)


class Track(msgspec.Struct, frozen=True, kw_only=True):
    # `type` is "audio" or "video" today; kept as str so a new kind does not reject the whole recording.
    type: str
    s3_key: NonBlank = msgspec.field(name="s3Key")
    size: float | None = None

    @property
    def size_bytes(self) -> int | None:
        return None if self.size is None else math.floor(self.size)


# ---------------------------------------------------------------------------------------------- payloads


class RecordingLayout(msgspec.Struct, frozen=True, kw_only=True):
    preset: str | None = None


class RecordingStartedPayload(msgspec.Struct, frozen=True, kw_only=True):
    recording_id: NonBlank
    start_ts: UnixSeconds
    action: str | None = None
    layout: RecordingLayout | None = None
    started_by: str | None = None
    instance_id: str | None = None
    # Not documented; Reflector reads it as optional and others report it absent.
    room_name: str | None = None

    @property
    def start_ts_s(self) -> int:
        return whole_seconds(self.start_ts)


class RecordingReadyPayload(msgspec.Struct, frozen=True, kw_only=True):
    recording_id: NonBlank
    room_name: NonBlank
    start_ts: UnixSeconds
    duration: RecordingDuration
    s3_key: NonBlank
    status: str | None = None
    max_participants: float | None = None
    share_token: str | None = None
    # raw-tracks only; null when Daily lost bucket permissions: kept as None, not an error.
    tracks: tuple[Track, ...] | None = None
    # Daily's own published example omits `type` (docs/daily-api.md): inferred below when absent.
    declared_type: ReadyType | None = msgspec.field(default=None, name="type")

    @property
    def recording_type(self) -> ReadyType:
        """The declared type; without one, raw-tracks when tracks are listed, else cloud (as the
        recording list, which never carries a type, is read)."""
        if self.declared_type is not None:
            return self.declared_type
        return "raw-tracks" if self.tracks else "cloud"

    @property
    def start_ts_s(self) -> int:
        return whole_seconds(self.start_ts)

    @property
    def duration_s(self) -> int:
        return whole_seconds(self.duration)


class RecordingErrorPayload(msgspec.Struct, frozen=True, kw_only=True):
    # Docs say "clourd-recording-err" (sic), production also shows "cloud-recording-error": any str.
    action: str | None = None
    error_msg: str | None = None
    instance_id: str | None = None
    room_name: str | None = None
    # Usually a number, one documented example is a string.
    timestamp: float | str | None = None

    @property
    def timestamp_s(self) -> float | None:
        return _timestamp_seconds(self.timestamp)


def _timestamp_seconds(value: float | str | None) -> float | None:
    if value is None or isinstance(value, float):
        return value
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = datetime.fromisoformat(value).timestamp()
        except (ValueError, OverflowError, OSError):
            return None
    return seconds if math.isfinite(seconds) else None


class ParticipantPayload(msgspec.Struct, frozen=True, kw_only=True):
    # Daily sends `room`; Reflector also accepts `room_name`. At least one must be present.
    room_: str | None = msgspec.field(default=None, name="room")
    room_name_: str | None = msgspec.field(default=None, name="room_name")
    session_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    joined_at: float | None = None
    duration: float | None = None
    owner: bool | None = None

    def __post_init__(self) -> None:
        _require_room(self.room_, self.room_name_)

    @property
    def room(self) -> str:
        return _resolve_room(self.room_, self.room_name_)


class MeetingPayload(msgspec.Struct, frozen=True, kw_only=True):
    meeting_id: NonBlank
    start_ts: UnixSeconds
    end_ts: UnixSeconds | None = None
    room_: str | None = msgspec.field(default=None, name="room")
    room_name_: str | None = msgspec.field(default=None, name="room_name")

    def __post_init__(self) -> None:
        _require_room(self.room_, self.room_name_)

    @property
    def room(self) -> str:
        return _resolve_room(self.room_, self.room_name_)


def _require_room(room: str | None, room_name: str | None) -> None:
    if not (room or room_name):
        # msgspec turns a ValueError from __post_init__ into a ValidationError.
        raise ValueError("expected `room` or `room_name`")


def _resolve_room(room: str | None, room_name: str | None) -> str:
    resolved = room or room_name
    assert resolved is not None  # guaranteed by __post_init__
    return resolved


class StreamingPayload(msgspec.Struct, frozen=True, kw_only=True):
    timestamp: float | str | None = None
    instance_id: str | None = None
    domain_id: str | None = None
    room_name: str | None = None
    error_message: str | None = None


# ------------------------------------------------------------------------------------------------ events


class _DailyEventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    # Opaque: never parse it (ids that look like they embed an instanceId are undocumented).
    id: NonBlank
    version: str | None = None
    # When the webhook was *sent*, not when the thing happened.
    event_ts: float | None = None

    @property
    def event_type(self) -> str:
        return str(self.__struct_config__.tag)


class RecordingStartedEvent(_DailyEventBase, frozen=True, tag="recording.started"):
    payload: RecordingStartedPayload


class RecordingReadyEvent(_DailyEventBase, frozen=True, tag="recording.ready-to-download"):
    payload: RecordingReadyPayload


class RecordingErrorEvent(_DailyEventBase, frozen=True, tag="recording.error"):
    payload: RecordingErrorPayload


class ParticipantJoinedEvent(_DailyEventBase, frozen=True, tag="participant.joined"):
    payload: ParticipantPayload


class ParticipantLeftEvent(_DailyEventBase, frozen=True, tag="participant.left"):
    payload: ParticipantPayload


class WaitingParticipantJoinedEvent(_DailyEventBase, frozen=True, tag="waiting-participant.joined"):
    payload: ParticipantPayload


class WaitingParticipantLeftEvent(_DailyEventBase, frozen=True, tag="waiting-participant.left"):
    payload: ParticipantPayload


class MeetingStartedEvent(_DailyEventBase, frozen=True, tag="meeting.started"):
    payload: MeetingPayload


class MeetingEndedEvent(_DailyEventBase, frozen=True, tag="meeting.ended"):
    payload: MeetingPayload


class StreamingStartedEvent(_DailyEventBase, frozen=True, tag="streaming.started"):
    payload: StreamingPayload


class StreamingUpdatedEvent(_DailyEventBase, frozen=True, tag="streaming.updated"):
    payload: StreamingPayload


class StreamingEndedEvent(_DailyEventBase, frozen=True, tag="streaming.ended"):
    payload: StreamingPayload


class StreamingErrorEvent(_DailyEventBase, frozen=True, tag="streaming.error"):
    payload: StreamingPayload


DailyEvent: TypeAlias = (
    RecordingStartedEvent
    | RecordingReadyEvent
    | RecordingErrorEvent
    | ParticipantJoinedEvent
    | ParticipantLeftEvent
    | WaitingParticipantJoinedEvent
    | WaitingParticipantLeftEvent
    | MeetingStartedEvent
    | MeetingEndedEvent
    | StreamingStartedEvent
    | StreamingUpdatedEvent
    | StreamingEndedEvent
    | StreamingErrorEvent
)


class UnknownEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A well-formed envelope whose `type` we do not handle; acknowledged, stored, otherwise ignored."""

    type: str
    id: str

    @property
    def event_type(self) -> str:
        return self.type


class _EventHead(msgspec.Struct, frozen=True):
    type: NonBlank
    id: NonBlank


KNOWN_EVENT_TYPES: frozenset[str] = frozenset(str(cls.__struct_config__.tag) for cls in get_args(DailyEvent))

_head_decoder = msgspec.json.Decoder(_EventHead)
_event_decoder: msgspec.json.Decoder[DailyEvent] = msgspec.json.Decoder(DailyEvent)

# Exceptions msgspec raises for hostile input besides DecodeError/ValidationError: deep nesting and
# invalid UTF-8 inside strings.
_DECODE_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)


def parse_event(body: bytes) -> DailyEvent | UnknownEvent:
    """Decode a webhook body; raises EventParseError and nothing else, whatever the bytes."""
    if not body.strip():
        raise EventParseError("empty body")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventParseError(f"invalid UTF-8: {exc}") from exc
    try:
        head = _head_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise EventParseError(f"invalid envelope: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise EventParseError(f"invalid JSON: {exc}") from exc
    if head.type not in KNOWN_EVENT_TYPES:
        return UnknownEvent(type=head.type, id=head.id)
    try:
        return _event_decoder.decode(body)
    except _DECODE_ERRORS as exc:
        raise EventParseError(f"invalid {head.type} event: {exc}") from exc


# JSON whitespace only (RFC 8259): space, tab, LF, CR.
_VERIFICATION_BODY = re.compile(
    rb'[ \t\n\r]*\{[ \t\n\r]*"test"[ \t\n\r]*:[ \t\n\r]*"test"[ \t\n\r]*\}[ \t\n\r]*'
)


def is_verification_request(body: bytes) -> bool:
    """Daily's webhook verification request: exactly the object {"test": "test"}."""
    return _VERIFICATION_BODY.fullmatch(body) is not None


# -------------------------------------------------------------------------------------- REST recordings


class S3Location(msgspec.Struct, frozen=True, kw_only=True):
    bucket_name: str | None = None
    bucket_region: str | None = None
    key: str | None = None
    endpoint: str | None = None


class DailyRecording(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /recordings[/:id]` item. It never carries `type` or an instanceId."""

    id: NonBlank
    room_name: str
    start_ts: UnixSeconds
    # "finished" | "in-progress" | "canceled"; str so a new status does not reject the page.
    status: str
    max_participants: float | None = None
    # Absent while in progress.
    duration: RecordingDuration | None = None
    # Examples spell it `s3key`, Daily's newer SDK `s3Key`, and some responses carry an `s3` object.
    s3key: str | None = None
    s3key_camel: str | None = msgspec.field(default=None, name="s3Key")
    s3: S3Location | None = None
    mtg_session_id: str | None = msgspec.field(default=None, name="mtgSessionId")
    tracks: tuple[Track, ...] | None = None

    @property
    def s3_key(self) -> str | None:
        for key in (self.s3key, self.s3key_camel, self.s3.key if self.s3 else None):
            if key and key.strip():
                return key
        return None

    @property
    def start_ts_s(self) -> int:
        return whole_seconds(self.start_ts)

    @property
    def duration_s(self) -> int | None:
        return None if self.duration is None else whole_seconds(self.duration)


class DailyRecordingList(msgspec.Struct, frozen=True, kw_only=True):
    """One page of `GET /recordings`. Items that fail to decode are listed in `rejected`, not fatal."""

    total_count: int
    recordings: tuple[DailyRecording, ...]
    rejected: tuple[str, ...]
    # `starting_after` cursor for the next (older) page: the last item's id, even if that item was rejected.
    last_id: str | None


class _RawRecordingList(msgspec.Struct, frozen=True):
    total_count: int
    data: tuple[msgspec.Raw, ...]


class _RecordingIdOnly(msgspec.Struct, frozen=True):
    id: str


_recording_decoder = msgspec.json.Decoder(DailyRecording)
_raw_list_decoder = msgspec.json.Decoder(_RawRecordingList)
_id_only_decoder = msgspec.json.Decoder(_RecordingIdOnly)


def decode_recording(body: bytes) -> DailyRecording:
    try:
        return _recording_decoder.decode(body)
    except _DECODE_ERRORS as exc:
        raise RecordingParseError(f"invalid recording: {exc}") from exc


def decode_recording_list(body: bytes) -> DailyRecordingList:
    try:
        page = _raw_list_decoder.decode(body)
    except _DECODE_ERRORS as exc:
        raise RecordingParseError(f"invalid recording list: {exc}") from exc
    recordings: list[DailyRecording] = []
    rejected: list[str] = []
    last_id: str | None = None
    for raw in page.data:
        try:
            rec = _recording_decoder.decode(raw)
        except _DECODE_ERRORS as exc:
            rejected.append(str(exc))
            try:
                last_id = _id_only_decoder.decode(raw).id
            except _DECODE_ERRORS:
                last_id = None
        else:
            recordings.append(rec)
            last_id = rec.id
    return DailyRecordingList(
        total_count=page.total_count,
        recordings=tuple(recordings),
        rejected=tuple(rejected),
        last_id=last_id,
    )


def infer_recording_type(rec: DailyRecording) -> RecordingType | None:
    # §10.9: the REST API never returns `type`. Caveat: a raw-tracks recording with null/empty tracks
    # and an s3key reads as cloud; callers that know their raw-tracks starts should cross-check.
    if rec.tracks:
        return "raw-tracks"
    if rec.s3_key is not None:
        return "cloud"
    return None


def is_finished(rec: DailyRecording) -> bool:
    return rec.status == "finished" and rec.duration is not None


# ----------------------------------------------------------------------------------- normalized value


def _tracks(tracks: tuple[Track, ...] | None) -> tuple[CoreTrack, ...] | None:
    if tracks is None:
        return None
    return tuple(CoreTrack(t.type, t.s3_key, t.size_bytes) for t in tracks)


def ready_from_event(event: RecordingReadyEvent) -> RecordingReady:
    p = event.payload
    return RecordingReady(
        daily_recording_id=p.recording_id,
        room_name=p.room_name,
        recording_type="raw-tracks" if p.recording_type == "raw-tracks" else "cloud",
        audio_only=p.recording_type == "cloud-audio-only",
        start_ts=p.start_ts_s,
        duration=p.duration_s,
        s3_key=p.s3_key,
        tracks=_tracks(p.tracks),
    )


def ready_from_rest(rec: DailyRecording) -> RecordingReady | None:
    """None when the type cannot be inferred (failed or incomplete recording)."""
    recording_type = infer_recording_type(rec)
    if recording_type is None:
        return None
    return RecordingReady(
        daily_recording_id=rec.id,
        room_name=rec.room_name,
        recording_type=recording_type,
        # The REST API cannot tell cloud-audio-only from cloud.
        audio_only=False,
        start_ts=rec.start_ts_s,
        duration=rec.duration_s,
        s3_key=rec.s3_key,
        tracks=_tracks(rec.tracks),
        mtg_session_id=rec.mtg_session_id,
    )


class _LegacyFoundRecording(msgspec.Struct, frozen=True, kw_only=True):
    """How the reconciler stored a found recording before tracks became core values (Daily's own
    track shape): such rows may still wait in an inbox across an upgrade."""

    daily_recording_id: str
    room_name: str
    recording_type: RecordingType
    audio_only: bool
    start_ts: int
    duration: int | None
    s3_key: str | None
    tracks: tuple[Track, ...] | None
    mtg_session_id: str | None = None


def decode_found_recording(body: bytes) -> RecordingReady:
    """A recording the reconciler stored in the inbox (msgspec-encoded RecordingReady)."""
    try:
        return msgspec.json.decode(body, type=RecordingReady)
    except msgspec.ValidationError:
        legacy = msgspec.json.decode(body, type=_LegacyFoundRecording)
        fields = {name: getattr(legacy, name) for name in legacy.__struct_fields__}
        return RecordingReady(**fields | {"tracks": _tracks(legacy.tracks)})
