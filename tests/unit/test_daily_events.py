from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder_service.adapters.daily.events import (
    MAX_RECORDING_DURATION_S,
    DailyRecording,
    MeetingEndedEvent,
    MeetingStartedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingErrorEvent,
    RecordingReadyEvent,
    RecordingStartedEvent,
    StreamingErrorEvent,
    Track,
    UnknownEvent,
    WaitingParticipantJoinedEvent,
    decode_recording,
    decode_recording_list,
    infer_recording_type,
    is_finished,
    is_verification_request,
    parse_event,
    ready_from_event,
    ready_from_rest,
)
from recorder_service.core.models import RecordingReady
from recorder_service.errors import EventParseError, RecordingParseError
from tests.support.paths import DAILY_FIXTURES

EXPECTED_KIND: dict[str, type] = {
    "webhook-meeting-ended.json": MeetingEndedEvent,
    "webhook-meeting-started.json": MeetingStartedEvent,
    "webhook-participant-joined.json": ParticipantJoinedEvent,
    "webhook-participant-left.json": ParticipantLeftEvent,
    "webhook-recording-error-alt-action.json": RecordingErrorEvent,
    "webhook-recording-error.json": RecordingErrorEvent,
    "webhook-recording-ready-cloud.json": RecordingReadyEvent,
    "webhook-recording-ready-raw-tracks-null-tracks.json": RecordingReadyEvent,
    "webhook-recording-ready-raw-tracks.json": RecordingReadyEvent,
    "webhook-recording-started-raw-tracks.json": RecordingStartedEvent,
    "webhook-recording-started.json": RecordingStartedEvent,
    "webhook-streaming-error.json": StreamingErrorEvent,
    "webhook-waiting-participant-joined.json": WaitingParticipantJoinedEvent,
}
# Not events: the verification request and the signature worked example.
NON_EVENT_FIXTURES = {"webhook-test.json", "webhook-signature-example.json"}


def fixture_bytes(name: str) -> bytes:
    return (DAILY_FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    data = json.loads(fixture_bytes(name))
    assert isinstance(data, dict)
    return data


def body_of(obj: object) -> bytes:
    return json.dumps(obj).encode()


def ready(name: str) -> RecordingReadyEvent:
    event = parse_event(fixture_bytes(name))
    assert isinstance(event, RecordingReadyEvent)
    return event


def with_payload(name: str, **changes: Any) -> bytes:
    data = fixture_json(name)
    data["payload"].update(changes)
    return body_of(data)


def without_payload_field(name: str, field: str) -> bytes:
    data = fixture_json(name)
    del data["payload"][field]
    return body_of(data)


# ------------------------------------------------------------------------------------------ fixtures


def test_every_webhook_fixture_is_covered() -> None:
    on_disk = {p.name for p in DAILY_FIXTURES.glob("webhook-*.json")}
    assert on_disk == set(EXPECTED_KIND) | NON_EVENT_FIXTURES


@pytest.mark.parametrize(("name", "kind"), sorted(EXPECTED_KIND.items()))
def test_fixture_parses_to_expected_kind(name: str, kind: type) -> None:
    event = parse_event(fixture_bytes(name))
    assert type(event) is kind
    assert not isinstance(event, UnknownEvent)
    raw = fixture_json(name)
    assert event.id == raw["id"]
    assert event.event_type == raw["type"]
    assert event.version == "1.0.0"
    assert event.event_ts == pytest.approx(raw["event_ts"])


def test_ready_cloud_exposes_whole_seconds_and_key() -> None:
    p = ready("webhook-recording-ready-cloud.json").payload
    assert p.recording_type == "cloud"
    assert p.recording_id == "9e2f6a41-7c3b-4d18-a5e0-6b8f2d94c1a7"
    assert p.room_name == "standup-7f3a9c"
    assert p.s3_key == "acme-rec/standup-7f3a9c/1767260345412"
    assert (p.start_ts_s, p.duration_s) == (1767260345, 1834)
    assert type(p.start_ts_s) is int
    assert type(p.duration_s) is int
    assert p.tracks is None
    assert p.share_token == "Qw3rTy8UiOp1"


def test_ready_raw_tracks_keeps_tracks_in_daily_order() -> None:
    p = ready("webhook-recording-ready-raw-tracks.json").payload
    assert p.recording_type == "raw-tracks"
    assert p.tracks is not None
    assert [t.type for t in p.tracks] == ["audio", "video", "audio", "video"]
    assert p.tracks[0].size_bytes == 14382211
    assert ready_from_event(ready("webhook-recording-ready-raw-tracks.json")).audio_track_keys == (
        "acme-rec/standup-7f3a9c/1767260343118-6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b-cam-audio-1767260343377",
        "acme-rec/standup-7f3a9c/1767260343118-a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d-cam-audio-1767260401890",
    )


def test_ready_raw_tracks_with_null_tracks_is_valid() -> None:
    event = ready("webhook-recording-ready-raw-tracks-null-tracks.json")
    assert event.payload.tracks is None
    assert event.payload.max_participants is None
    assert event.payload.start_ts_s == 1767269950
    rec = ready_from_event(event)
    assert rec.recording_type == "raw-tracks"
    assert rec.tracks is None
    assert rec.audio_track_keys == ()


def test_float_timestamps_and_durations_are_accepted() -> None:
    started = parse_event(fixture_bytes("webhook-meeting-started.json"))
    assert isinstance(started, MeetingStartedEvent)
    assert started.payload.start_ts == pytest.approx(1767260330.48)
    assert started.payload.room == "standup-7f3a9c"
    assert started.event_ts == pytest.approx(1767260331.096)

    ended = parse_event(fixture_bytes("webhook-meeting-ended.json"))
    assert isinstance(ended, MeetingEndedEvent)
    assert ended.payload.end_ts == pytest.approx(1767262196.2)

    left = parse_event(fixture_bytes("webhook-participant-left.json"))
    assert isinstance(left, ParticipantLeftEvent)
    assert left.payload.duration == pytest.approx(1769.18)

    body = with_payload("webhook-recording-ready-cloud.json", start_ts=1767260345.96, duration=1834.7)
    event = parse_event(body)
    assert isinstance(event, RecordingReadyEvent)
    assert (event.payload.start_ts_s, event.payload.duration_s) == (1767260345, 1834)


def test_recording_error_accepts_any_action_and_float_timestamp() -> None:
    event = parse_event(fixture_bytes("webhook-recording-error-alt-action.json"))
    assert isinstance(event, RecordingErrorEvent)
    assert event.payload.action == "cloud-recording-error"
    assert event.payload.error_msg == "cloud-recording-error: recording worker exited unexpectedly"
    assert event.payload.instance_id == "0f8e4d2c-6a1b-4c3d-9e7f-112233445566"
    assert event.payload.timestamp_s == pytest.approx(1767260389.85)

    documented = parse_event(fixture_bytes("webhook-recording-error.json"))
    assert isinstance(documented, RecordingErrorEvent)
    assert documented.payload.action == "clourd-recording-err"
    assert documented.payload.timestamp_s == 1767260360


@pytest.mark.parametrize(
    ("timestamp", "seconds"),
    [
        ("1767260360", 1767260360.0),
        ("1767260360.5", 1767260360.5),
        ("2026-01-01T10:00:00+00:00", 1767261600.0),
        ("soon", None),
        ("inf", None),
    ],
)
def test_recording_error_timestamp_may_be_a_string(timestamp: str, seconds: float | None) -> None:
    event = parse_event(with_payload("webhook-recording-error.json", timestamp=timestamp))
    assert isinstance(event, RecordingErrorEvent)
    assert event.payload.timestamp == timestamp
    assert event.payload.timestamp_s == seconds


def test_recording_error_with_only_a_message_still_parses() -> None:
    body = body_of({"type": "recording.error", "id": "e1", "payload": {"error_msg": "boom"}})
    event = parse_event(body)
    assert isinstance(event, RecordingErrorEvent)
    assert event.payload.instance_id is None
    assert event.payload.timestamp_s is None


def test_recording_started_has_no_room_name_unless_daily_sends_one() -> None:
    event = parse_event(fixture_bytes("webhook-recording-started.json"))
    assert isinstance(event, RecordingStartedEvent)
    assert event.payload.room_name is None
    assert event.payload.instance_id == "0f8e4d2c-6a1b-4c3d-9e7f-112233445566"
    assert event.payload.layout is not None
    assert event.payload.layout.preset == "default"
    assert event.payload.start_ts_s == 1767260345

    with_room = parse_event(with_payload("webhook-recording-started.json", room_name="standup-7f3a9c"))
    assert isinstance(with_room, RecordingStartedEvent)
    assert with_room.payload.room_name == "standup-7f3a9c"


def test_participant_room_may_be_named_room_or_room_name() -> None:
    data = fixture_json("webhook-participant-joined.json")
    room = data["payload"].pop("room")
    data["payload"]["room_name"] = room
    event = parse_event(body_of(data))
    assert isinstance(event, ParticipantJoinedEvent)
    assert event.payload.room == "standup-7f3a9c"
    assert event.payload.session_id == "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"


def test_participant_without_any_room_is_rejected() -> None:
    with pytest.raises(EventParseError, match="room"):
        parse_event(without_payload_field("webhook-participant-joined.json", "room"))


def test_cloud_audio_only_is_a_cloud_recording_flagged_audio_only() -> None:
    event = parse_event(with_payload("webhook-recording-ready-cloud.json", type="cloud-audio-only"))
    assert isinstance(event, RecordingReadyEvent)
    rec = ready_from_event(event)
    assert (rec.recording_type, rec.audio_only) == ("cloud", True)


def test_ready_event_normalizes_to_recording_ready() -> None:
    rec = ready_from_event(ready("webhook-recording-ready-cloud.json"))
    assert rec == RecordingReady(
        daily_recording_id="9e2f6a41-7c3b-4d18-a5e0-6b8f2d94c1a7",
        room_name="standup-7f3a9c",
        recording_type="cloud",
        audio_only=False,
        start_ts=1767260345,
        duration=1834,
        s3_key="acme-rec/standup-7f3a9c/1767260345412",
        tracks=None,
    )


def test_unknown_fields_are_ignored() -> None:
    data = fixture_json("webhook-recording-ready-raw-tracks.json")
    data["brand_new"] = {"nested": [1, 2]}
    data["payload"]["another"] = "x"
    data["payload"]["tracks"][0]["codec"] = "opus"
    event = parse_event(body_of(data))
    assert isinstance(event, RecordingReadyEvent)
    assert event == ready("webhook-recording-ready-raw-tracks.json")


def test_unknown_event_type_is_returned_not_rejected() -> None:
    event = parse_event(body_of({"type": "transcription.started", "id": "t-1", "payload": {"x": 1}}))
    assert event == UnknownEvent(type="transcription.started", id="t-1")


def test_unknown_event_with_odd_envelope_fields_is_still_unknown() -> None:
    body = body_of({"type": "dialout.connected", "id": "d-1", "event_ts": "yesterday", "payload": None})
    assert parse_event(body) == UnknownEvent(type="dialout.connected", id="d-1")


def test_duration_of_exactly_seven_days_is_accepted() -> None:
    event = parse_event(with_payload("webhook-recording-ready-cloud.json", duration=MAX_RECORDING_DURATION_S))
    assert isinstance(event, RecordingReadyEvent)


def _ready_cloud_without_s3_key() -> bytes:
    return without_payload_field("webhook-recording-ready-cloud.json", "s3_key")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"  \n\t", id="whitespace"),
        pytest.param(b'{"type": "recording.started", "id": "\xff"}', id="invalid-utf8"),
        pytest.param(b"{not json", id="invalid-json"),
        pytest.param(b'{"type": "a", "id": "b"} trailing', id="trailing-garbage"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"recording.started"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"test": "test"}', id="verification-request"),
        pytest.param(b'{"id": "x", "payload": {}}', id="missing-type"),
        pytest.param(b'{"type": "recording.started", "payload": {}}', id="missing-id"),
        pytest.param(b'{"type": "recording.started", "id": ""}', id="empty-id"),
        pytest.param(b'{"type": "", "id": "x"}', id="empty-type"),
        pytest.param(b'{"type": 7, "id": "x"}', id="type-not-string"),
        pytest.param(b'{"type": "recording.started", "id": 7}', id="id-not-string"),
        pytest.param(b'{"type": "recording.started", "id": "x"}', id="missing-payload"),
        pytest.param(b'{"type": "recording.started", "id": "x", "payload": []}', id="payload-not-object"),
        pytest.param(_ready_cloud_without_s3_key(), id="ready-missing-s3-key"),
        pytest.param(with_payload("webhook-recording-ready-cloud.json", s3_key=""), id="ready-empty-s3-key"),
        pytest.param(
            with_payload("webhook-recording-ready-cloud.json", s3_key="  "), id="ready-blank-s3-key"
        ),
        pytest.param(with_payload("webhook-recording-ready-cloud.json", duration=-1), id="negative-duration"),
        pytest.param(
            with_payload("webhook-recording-ready-cloud.json", duration=MAX_RECORDING_DURATION_S + 1),
            id="absurd-duration",
        ),
        pytest.param(
            with_payload("webhook-recording-ready-cloud.json", duration="1834"), id="duration-string"
        ),
        pytest.param(
            without_payload_field("webhook-recording-ready-cloud.json", "duration"), id="no-duration"
        ),
        pytest.param(
            with_payload("webhook-recording-ready-cloud.json", type="local"), id="ready-unknown-type"
        ),
        pytest.param(with_payload("webhook-recording-ready-cloud.json", start_ts=-5), id="negative-start"),
        pytest.param(
            with_payload("webhook-recording-ready-raw-tracks.json", tracks=[{"type": "audio", "size": 1}]),
            id="track-without-key",
        ),
        pytest.param(
            b'{"type":"recording.ready-to-download","id":"x","payload":{"duration":1e400}}',
            id="infinite-number",
        ),
        pytest.param(b'{"type": "x", "id": "y", "z": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="deep-nesting"),
    ],
)
def test_invalid_bodies_raise_event_parse_error(body: bytes) -> None:
    with pytest.raises(EventParseError) as info:
        parse_event(body)
    assert info.value.reason


# --------------------------------------------------------------------------------- verification body


@pytest.mark.parametrize(
    "body",
    [b'{"test":"test"}', b'{"test": "test"}', b' {\n  "test" : "test"\n}\n', b'\t{"test":"test"}\r\n'],
)
def test_verification_request_is_recognized(body: bytes) -> None:
    assert is_verification_request(body)


def test_verification_fixture_is_recognized() -> None:
    assert is_verification_request(fixture_bytes("webhook-test.json"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"test":"test","extra":1}',
        b'{"test":"tset"}',
        b'{"Test":"test"}',
        b'[{"test":"test"}]',
        b'"test"',
        b'{"test":"test"}}',
        b'{"test":"test"} x',
        b'\x0b{"test":"test"}',
        b'{"test":["test"]}',
    ],
)
def test_other_bodies_are_not_verification_requests(body: bytes) -> None:
    assert not is_verification_request(body)


def test_real_events_are_not_verification_requests() -> None:
    for name in EXPECTED_KIND:
        assert not is_verification_request(fixture_bytes(name))


# ------------------------------------------------------------------------------------- REST recordings


def test_rest_cloud_recording() -> None:
    rec = decode_recording(fixture_bytes("rest-get-recording-cloud.json"))
    assert rec.s3_key == "acme-rec/standup-7f3a9c/1767260345412"
    assert rec.mtg_session_id == "d4c3b2a1-1e2f-4a5b-8c7d-9e0f1a2b3c4d"
    assert rec.tracks == ()
    assert infer_recording_type(rec) == "cloud"
    assert is_finished(rec)
    ready_rec = ready_from_rest(rec)
    assert ready_rec == RecordingReady(
        daily_recording_id="9e2f6a41-7c3b-4d18-a5e0-6b8f2d94c1a7",
        room_name="standup-7f3a9c",
        recording_type="cloud",
        audio_only=False,
        start_ts=1767260345,
        duration=1834,
        s3_key="acme-rec/standup-7f3a9c/1767260345412",
        tracks=(),
        mtg_session_id="d4c3b2a1-1e2f-4a5b-8c7d-9e0f1a2b3c4d",
    )


def test_rest_raw_tracks_recording_matches_the_webhook() -> None:
    rec = decode_recording(fixture_bytes("rest-get-recording-raw-tracks.json"))
    assert rec.s3_key is None
    assert infer_recording_type(rec) == "raw-tracks"
    from_rest = ready_from_rest(rec)
    from_hook = ready_from_event(ready("webhook-recording-ready-raw-tracks.json"))
    assert from_rest is not None
    assert from_rest.tracks == from_hook.tracks
    assert from_rest.audio_track_keys == from_hook.audio_track_keys
    assert (from_rest.daily_recording_id, from_rest.start_ts, from_rest.duration) == (
        from_hook.daily_recording_id,
        from_hook.start_ts,
        from_hook.duration,
    )


def test_rest_recording_list_fixture() -> None:
    page = decode_recording_list(fixture_bytes("rest-list-recordings.json"))
    assert page.total_count == 137
    assert page.rejected == ()
    assert page.last_id == "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"
    by_status = [(r.status, infer_recording_type(r), is_finished(r)) for r in page.recordings]
    assert by_status == [
        ("in-progress", None, False),
        ("finished", "raw-tracks", True),
        ("finished", "cloud", True),
        ("finished", "cloud", True),
        ("canceled", None, False),
    ]
    assert page.recordings[0].duration is None
    assert page.recordings[3].mtg_session_id is None
    assert ready_from_rest(page.recordings[4]) is None


def _rest_recording(**fields: Any) -> DailyRecording:
    base: dict[str, Any] = {"id": "r1", "room_name": "room", "start_ts": 1767260345, "status": "finished"}
    return decode_recording(body_of(base | fields))


def test_rest_s3_key_accepts_camel_case_and_s3_object() -> None:
    assert _rest_recording(s3Key="a/b/1").s3_key == "a/b/1"
    s3 = {"bucket_name": "bkt", "bucket_region": "us-east-1", "key": "a/b/2", "endpoint": "https://s3"}
    rec = _rest_recording(s3=s3)
    assert rec.s3_key == "a/b/2"
    assert rec.s3 is not None
    assert rec.s3.bucket_name == "bkt"
    assert infer_recording_type(rec) == "cloud"
    assert _rest_recording(s3key="", s3Key="a/b/3").s3_key == "a/b/3"
    assert _rest_recording(s3key="a/b/4", s3Key="x").s3_key == "a/b/4"


def test_rest_recording_without_key_or_tracks_has_no_type() -> None:
    assert infer_recording_type(_rest_recording(tracks=None)) is None
    assert infer_recording_type(_rest_recording(tracks=[])) is None
    assert infer_recording_type(_rest_recording(s3key="   ")) is None


def test_rest_recording_with_only_video_tracks_is_raw_tracks_without_audio() -> None:
    rec = _rest_recording(tracks=[{"type": "video", "s3Key": "k-cam-video", "size": 10}])
    assert infer_recording_type(rec) == "raw-tracks"
    normalized = ready_from_rest(rec)
    assert normalized is not None
    assert normalized.audio_track_keys == ()


def test_rest_float_numbers_are_accepted() -> None:
    rec = _rest_recording(start_ts=1767260345.9, duration=12.5, max_participants=2.0, s3key="k")
    assert (rec.start_ts_s, rec.duration_s) == (1767260345, 12)


def test_rest_finished_without_duration_is_not_finished() -> None:
    assert not is_finished(_rest_recording(s3key="k"))


def test_rest_list_keeps_good_items_and_reports_bad_ones() -> None:
    body = body_of(
        {
            "total_count": 3,
            "data": [
                {
                    "id": "ok",
                    "room_name": "r",
                    "start_ts": 1,
                    "status": "finished",
                    "duration": 3,
                    "s3key": "k",
                },
                {"id": "bad-duration", "room_name": "r", "start_ts": 1, "status": "finished", "duration": -3},
                {"id": "bad-status", "room_name": "r", "start_ts": 1, "status": None},
            ],
        }
    )
    page = decode_recording_list(body)
    assert [r.id for r in page.recordings] == ["ok"]
    assert len(page.rejected) == 2
    assert page.last_id == "bad-status"


@pytest.mark.parametrize("body", [b"", b"[]", b'{"data": []}', b'{"total_count": 1, "data": {}}', b"{"])
def test_rest_list_invalid_shape_raises(body: bytes) -> None:
    with pytest.raises(RecordingParseError):
        decode_recording_list(body)


def test_rest_recording_invalid_shape_raises() -> None:
    with pytest.raises(RecordingParseError):
        decode_recording(b'{"id": "x"}')


def test_track_encodes_with_daily_key_name() -> None:
    track = Track(type="audio", s3_key="k", size=3)
    assert msgspec.json.decode(msgspec.json.encode(track)) == {"type": "audio", "s3Key": "k", "size": 3}


# ------------------------------------------------------------------------------------------ properties


def _parse_or_parse_error(body: bytes) -> None:
    try:
        event = parse_event(body)
    except EventParseError:
        return
    assert event.id
    assert event.event_type


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_event_parse_error(body: bytes) -> None:
    _parse_or_parse_error(body)


_EVENT_BODIES = [fixture_bytes(name) for name in sorted(EXPECTED_KIND)]


@given(
    st.sampled_from(_EVENT_BODIES),
    st.lists(
        st.tuples(
            st.integers(min_value=0),
            st.sampled_from(["flip", "insert", "delete"]),
            st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_byte_mutated_fixtures_raise_only_event_parse_error(
    body: bytes, edits: list[tuple[int, str, bytes]]
) -> None:
    mutated = bytearray(body)
    for position, action, chunk in edits:
        at = position % (len(mutated) + 1)
        if action == "insert":
            mutated[at:at] = chunk
        elif action == "delete":
            del mutated[at : at + len(chunk)]
        elif mutated:
            mutated[at % len(mutated)] ^= chunk[0] or 1
    _parse_or_parse_error(bytes(mutated))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_DELETE = object()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if replacement is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


@st.composite
def _structurally_mutated_fixture(draw: st.DrawFn) -> bytes:
    doc = json.loads(draw(st.sampled_from(_EVENT_BODIES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        doc = _mutate(doc, path, draw(_JSON_VALUES | st.just(_DELETE)))
    return json.dumps(doc).encode()  # may contain NaN/Infinity: invalid JSON is part of the test


@given(_structurally_mutated_fixture())
def test_structurally_mutated_fixtures_raise_only_event_parse_error(body: bytes) -> None:
    _parse_or_parse_error(body)
