"""Daily payloads as Reflector's repository keeps them (tests/fixtures/reflector/, sources in its
SOURCES.md) decode the way the service needs: these are what another integration really received
or documented, where tests/fixtures/daily/ holds invented values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recorder_service.adapters.daily.events import (
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingReadyEvent,
    decode_recording_list,
    infer_recording_type,
    is_finished,
    parse_event,
    ready_from_event,
    ready_from_rest,
)
from tests.support.paths import REFLECTOR_FIXTURES


def sample_bytes(name: str) -> bytes:
    return (REFLECTOR_FIXTURES / name).read_bytes()


def sample_json(name: str) -> Any:
    return json.loads(sample_bytes(name))


def ready_envelope(payload: dict[str, Any], **extra: Any) -> bytes:
    """A ready event around a payload-only sample; `extra` supplies the fields the sample leaves out."""
    return json.dumps(
        {
            "version": "1.0.0",
            "type": "recording.ready-to-download",
            "id": "rec-rtd-sample",
            "payload": {**payload, **extra},
            "event_ts": 1760990000,
        }
    ).encode()


@pytest.mark.parametrize(
    ("name", "kind", "user_name"),
    [
        ("participant.joined.json", ParticipantJoinedEvent, "testuser"),
        ("participant.left.json", ParticipantLeftEvent, "bipol"),
    ],
)
def test_participant_samples_name_the_room_in_room_not_room_name(
    name: str, kind: type, user_name: str
) -> None:
    event = parse_event(sample_bytes(name))
    assert isinstance(event, ParticipantJoinedEvent | ParticipantLeftEvent)
    assert type(event) is kind
    assert event.payload.room == "test"
    assert event.payload.user_name == user_name
    assert event.payload.session_id == "0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa"
    # Float timestamps (docs/daily-api.md §9): 1708972279.96, 1708972302.986.
    assert event.event_ts == sample_json(name)["event_ts"]


def test_participant_left_keeps_its_float_duration() -> None:
    event = parse_event(sample_bytes("participant.left.json"))
    assert isinstance(event, ParticipantLeftEvent)
    assert event.payload.duration == pytest.approx(11.419000148773193)


def test_daily_docs_cloud_example_lacks_type_and_is_read_as_cloud() -> None:
    # Daily's published example of recording.ready-to-download has no payload.type, which the
    # same page lists as a field. Without tracks it is a cloud recording, as the recording list
    # (which never carries a type) is read; applied from the webhook, not left to the reconciler.
    event = parse_event(sample_bytes("recording.ready-to-download.cloud.json"))
    assert isinstance(event, RecordingReadyEvent)
    assert event.payload.declared_type is None
    ready = ready_from_event(event)
    assert (ready.recording_type, ready.audio_only) == ("cloud", False)
    # Daily's cloud keys have no extension (docs/daily-api.md §2): playback must set the type.
    assert ready.s3_key == "api-test-1j8fizhzd30c/Xcm97xRZ08b2dePKb78g/1692124183028"
    assert (ready.start_ts, ready.duration) == (1692124183, 9)


def test_a_ready_event_without_type_but_with_tracks_is_raw_tracks() -> None:
    data = sample_json("recording.ready-to-download.cloud.json")
    data["payload"]["tracks"] = [{"type": "audio", "s3Key": "k/audio-1", "size": 10}]
    event = parse_event(json.dumps(data).encode())
    assert isinstance(event, RecordingReadyEvent)
    assert ready_from_event(event).recording_type == "raw-tracks"


def test_captured_raw_tracks_payload_gives_audio_keys_in_daily_order() -> None:
    payload = sample_json("recording.ready-to-download.raw-tracks.payload.json")
    # The sample is the payload alone, as Reflector's docs print it: the envelope and the fields
    # below are ours.
    body = ready_envelope(
        payload,
        type="raw-tracks",
        start_ts=1760988935,
        duration=60,
        status="finished",
        s3_key="monadical/daily-20251020193458/1760988935484",
    )
    event = parse_event(body)
    assert isinstance(event, RecordingReadyEvent)
    ready = ready_from_event(event)
    assert ready.recording_type == "raw-tracks"
    assert ready.audio_track_keys == (
        "monadical/daily-20251020193458/1760988935484-52f7f48b-fbab-431f-9a50-87b9abfc8255-cam-audio-1760988935922",
        "monadical/daily-20251020193458/1760988935484-a37c35e3-6f8e-4274-a482-e9d0f102a732-cam-audio-1760988943823",
    )
    assert ready.tracks is not None
    assert [(t.type, t.size) for t in ready.tracks] == [
        ("audio", 831843),
        ("audio", 408438),
        ("video", 30000000),
    ]


def test_sketched_raw_tracks_payload_keeps_keys_as_given() -> None:
    # An illustrative fragment (abbreviated ids, `.webm` suffixes real keys lack): keys are opaque.
    payload = sample_json("recording.ready-to-download.raw-tracks.payload-sketch.json")
    body = ready_envelope(payload, type="raw-tracks", start_ts=1760038000, duration=5, s3_key="monadical/x")
    event = parse_event(body)
    assert isinstance(event, RecordingReadyEvent)
    assert ready_from_event(event).audio_track_keys == ("monadical/test2-.../uuid-cam-audio-123.webm",)


def test_production_recording_list_reads_as_finished_raw_tracks() -> None:
    # The `data` array of GET /recordings as Reflector inspected it in production: no `type`,
    # no `s3key`, abbreviated track keys; one room, two meeting sessions, a stop and restart.
    data = sample_json("GET-recordings.data.json")
    page = decode_recording_list(json.dumps({"total_count": len(data), "data": data}).encode())
    assert page.rejected == ()
    assert page.last_id == data[-1]["id"]
    assert [r.id for r in page.recordings] == [d["id"] for d in data]
    assert all(infer_recording_type(r) == "raw-tracks" and is_finished(r) for r in page.recordings)
    readies = [ready_from_rest(r) for r in page.recordings]
    assert all(r is not None and r.s3_key is None for r in readies)
    assert [r.audio_track_keys for r in readies if r is not None] == [
        tuple(t["s3Key"] for t in d["tracks"] if t["type"] == "audio") for d in data
    ]
    assert {r.mtg_session_id for r in readies if r is not None} == {d["mtgSessionId"] for d in data}
