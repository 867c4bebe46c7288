from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from recorder_service.adapters.daily.events import RecordingReadyEvent, parse_event, ready_from_event
from recorder_service.core.callbacks import (
    CallbackSigner,
    CallbackTrack,
    CloudReadyCallback,
    CloudReadyData,
    RawTracksReadyCallback,
    RawTracksReadyData,
    callback_decoder,
    cloud_ready_data,
    encode_callback,
    new_message_id,
    raw_tracks_ready_data,
)
from recorder_service.core.models import RecordingReady
from tests.support.paths import DAILY_FIXTURES

SECRET = "whsec_" + base64.b64encode(b"reflector-callback-secret-32byte").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-secret-entirely-32byt").decode()
AT = datetime(2026, 1, 1, 10, 30, 5, tzinfo=UTC)


def ready_recording(name: str) -> RecordingReady:
    event = parse_event((DAILY_FIXTURES / name).read_bytes())
    assert isinstance(event, RecordingReadyEvent)
    return ready_from_event(event)


def now_s() -> int:
    return int(time.time())


# -------------------------------------------------------------------------------------------- signing


def test_signed_callback_verifies_with_standardwebhooks() -> None:
    body = b'{"type":"recording.raw_tracks_ready","data":{"x":1}}'
    headers = CallbackSigner(SECRET).sign("msg_abc", now_s(), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_abc"
    assert Webhook(SECRET).verify(body, headers) == {"type": "recording.raw_tracks_ready", "data": {"x": 1}}


def test_signature_matches_standardwebhooks_exactly() -> None:
    ts = 1767262203
    body = '{"ünïcode": "bödy"}'.encode()
    headers = CallbackSigner(SECRET).sign("msg_1", ts, body)
    expected = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(ts, tz=UTC), body.decode())
    assert headers["webhook-signature"] == expected
    assert headers["webhook-timestamp"] == "1767262203"
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])


def test_tampered_body_fails_verification() -> None:
    headers = CallbackSigner(SECRET).sign("msg_abc", now_s(), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', headers)


def test_wrong_secret_fails_verification() -> None:
    body = b'{"a":1}'
    headers = CallbackSigner(OTHER_SECRET).sign("msg_abc", now_s(), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers)


def test_message_id_is_part_of_the_signature() -> None:
    body = b'{"a":1}'
    headers = CallbackSigner(SECRET).sign("msg_abc", now_s(), body) | {"webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers)


def test_secret_without_prefix_signs_the_same() -> None:
    bare = SECRET.removeprefix("whsec_")
    assert CallbackSigner(bare).sign("m", 1, b"x") == CallbackSigner(SECRET).sign("m", 1, b"x")


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_***", "whsec_a b"])
def test_malformed_secret_is_rejected(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        CallbackSigner(secret)


def test_message_ids_are_prefixed_url_safe_and_unique() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    for msg_id in ids:
        assert re.fullmatch(r"msg_[A-Za-z0-9_-]{20,}", msg_id)


@given(st.text(max_size=300), st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=30))
def test_any_body_and_id_verify_with_standardwebhooks(text: str, msg_id: str) -> None:
    body = text.encode()
    headers = CallbackSigner(SECRET).sign(msg_id, now_s(), body)
    Webhook(SECRET).verify(body, headers, json_parse=False)


# ------------------------------------------------------------------------------------------- payloads


def test_raw_tracks_callback_body_matches_the_contract() -> None:
    recording = ready_recording("webhook-recording-ready-raw-tracks.json")
    data = raw_tracks_ready_data(meeting_id="m-1", bucket="reflector-raw", recording=recording)
    body = encode_callback(data, AT)
    decoded = json.loads(body)
    assert list(decoded) == ["type", "timestamp", "data"]
    prefix = "acme-rec/standup-7f3a9c/1767260343118-"
    assert decoded == {
        "type": "recording.raw_tracks_ready",
        "timestamp": "2026-01-01T10:30:05Z",
        "data": {
            "meeting_id": "m-1",
            "room_name": "standup-7f3a9c",
            "recording_id": "3a7c9e1f-2b4d-4f6a-8c0e-5d7f9b1a3c5e",
            "bucket": "reflector-raw",
            "track_keys": [
                prefix + "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b-cam-audio-1767260343377",
                prefix + "a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d-cam-audio-1767260401890",
            ],
            "tracks": [
                {
                    "type": "audio",
                    "s3_key": prefix + "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b-cam-audio-1767260343377",
                    "size": 14382211,
                },
                {
                    "type": "video",
                    "s3_key": prefix + "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b-cam-video-1767260343502",
                    "size": 402118733,
                },
                {
                    "type": "audio",
                    "s3_key": prefix + "a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d-cam-audio-1767260401890",
                    "size": 12950044,
                },
                {
                    "type": "video",
                    "s3_key": prefix + "a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d-screen-video-1767261022045",
                    "size": 88213006,
                },
            ],
            "start_ts": 1767260343,
            "duration": 1836,
        },
    }
    assert callback_decoder.decode(body) == RawTracksReadyCallback(
        timestamp="2026-01-01T10:30:05Z", data=data
    )


def test_raw_tracks_callback_with_null_tracks_has_empty_lists() -> None:
    recording = ready_recording("webhook-recording-ready-raw-tracks-null-tracks.json")
    data = raw_tracks_ready_data(meeting_id="m-2", bucket="b", recording=recording)
    decoded = json.loads(encode_callback(data, AT))
    assert decoded["data"]["track_keys"] == []
    assert decoded["data"]["tracks"] == []
    assert decoded["data"]["duration"] == 41


def test_cloud_callback_body() -> None:
    recording = ready_recording("webhook-recording-ready-cloud.json")
    data = cloud_ready_data(meeting_id="m-3", bucket="reflector-cloud", recording=recording)
    body = encode_callback(data, AT.astimezone(timezone(timedelta(hours=2))))
    assert json.loads(body) == {
        "type": "recording.cloud_ready",
        "timestamp": "2026-01-01T10:30:05Z",
        "data": {
            "meeting_id": "m-3",
            "room_name": "standup-7f3a9c",
            "recording_id": "9e2f6a41-7c3b-4d18-a5e0-6b8f2d94c1a7",
            "bucket": "reflector-cloud",
            "s3_key": "acme-rec/standup-7f3a9c/1767260345412",
            "duration": 1834,
            "start_ts": 1767260345,
        },
    }
    assert isinstance(callback_decoder.decode(body), CloudReadyCallback)


def test_cloud_callback_needs_a_cloud_recording() -> None:
    recording = ready_recording("webhook-recording-ready-raw-tracks.json")
    with pytest.raises(ValueError, match="cloud"):
        cloud_ready_data(meeting_id="m", bucket="b", recording=recording)


def test_naive_timestamp_is_rejected() -> None:
    data = CloudReadyData(
        meeting_id="m", room_name="r", recording_id="x", bucket="b", s3_key="k", duration=None, start_ts=1
    )
    with pytest.raises(ValueError, match="timezone"):
        encode_callback(data, datetime(2026, 1, 1, 10, 0, 0))


def test_explicit_payload_encodes_null_duration() -> None:
    data = RawTracksReadyData(
        meeting_id="m",
        room_name="r",
        recording_id="x",
        bucket="b",
        track_keys=("k1",),
        tracks=(CallbackTrack(type="audio", s3_key="k1", size=None),),
        start_ts=5,
        duration=None,
    )
    decoded = json.loads(encode_callback(data, AT))
    assert decoded["data"]["duration"] is None
    assert decoded["data"]["tracks"] == [{"type": "audio", "s3_key": "k1", "size": None}]


def test_signed_encoded_callback_round_trips_through_standardwebhooks() -> None:
    recording = ready_recording("webhook-recording-ready-raw-tracks.json")
    body = encode_callback(raw_tracks_ready_data(meeting_id="m", bucket="b", recording=recording), AT)
    headers = CallbackSigner(SECRET).sign(new_message_id(), now_s(), body)
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "recording.raw_tracks_ready"
    assert len(payload["data"]["track_keys"]) == 2
