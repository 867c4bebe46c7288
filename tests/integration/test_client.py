"""RecorderClient against the running service, and verify_callback against the standardwebhooks package."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest
from standardwebhooks.webhooks import Webhook

from recorder_service import client
from recorder_service.client import (
    CLOUD_READY,
    RAW_TRACKS_READY,
    Availability,
    CallbackEvent,
    DailyEventCallback,
    InvalidCallbackPayload,
    InvalidCallbackSignature,
    RecorderClient,
    RecorderClientError,
    RecorderNotFound,
    RecorderUnauthorized,
    RecorderUnavailable,
    verify_callback,
)
from recorder_service.core.callbacks import (
    CallbackTrack,
    CloudReadyData,
    RawTracksReadyData,
    encode_callback,
    encode_daily_event,
)
from recorder_service.http import schemas
from tests.plugins.receiver import new_callback_secret
from tests.plugins.service import INTERNAL_KEY, ServiceFactory, service_env

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
Signed = tuple[dict[str, str], bytes, str, datetime]  # headers, body, secret, now
RejectCase = Callable[[str, bytes], Signed]
NOT_AVAILABLE = Availability(cloud_recording_available=False, cloud_recording_duration=None)


# ---------------------------------------------------------------------------------------------- client


async def test_register_creates_then_updates_and_get_returns_it(
    db_url: str, service_factory: ServiceFactory
) -> None:
    meeting_id = "m:1.a_b-c"  # every character class the contract allows survives the path
    async with service_factory(service_env(db_url)) as svc, RecorderClient(svc.url, INTERNAL_KEY) as rc:
        m = await rc.register_meeting(
            meeting_id, room_name="standup-20261124100000", recording_type="cloud", start_date=START
        )
        assert m.created is True
        assert (m.meeting_id, m.room_name, m.recording_type) == (
            meeting_id,
            "standup-20261124100000",
            "cloud",
        )
        assert m.start_date == START
        assert m.end_date is None
        assert m.cloud_recording_available is False
        assert m.cloud_recording_duration is None
        assert m.recordings == ()

        end = START + timedelta(hours=1)
        m = await rc.register_meeting(
            meeting_id, room_name="renamed", recording_type="cloud", start_date=START, end_date=end
        )
        assert m.created is False
        assert m.room_name == "renamed"
        assert m.end_date == end

        got = await rc.get_recordings(meeting_id)
        assert (got.meeting_id, got.room_name, got.end_date) == (meeting_id, "renamed", end)
        assert got.recordings == ()


async def test_unknown_meeting_raises_not_found_with_the_detail(
    db_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url)) as svc, RecorderClient(svc.url, INTERNAL_KEY) as rc:
        with pytest.raises(RecorderNotFound) as caught:
            await rc.get_recordings("nope")
        assert caught.value.status_code == 404
        assert caught.value.detail == "meeting nope is not registered"


async def test_bad_input_raises_the_base_error_with_400(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url)) as svc, RecorderClient(svc.url, INTERNAL_KEY) as rc:
        with pytest.raises(RecorderClientError) as caught:
            await rc.register_meeting("bad id!", room_name="r", recording_type="cloud", start_date=START)
        assert type(caught.value) is RecorderClientError
        assert caught.value.status_code == 400
        assert caught.value.detail


async def test_wrong_key_raises_unauthorized(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url)) as svc, RecorderClient(svc.url, "wrong-key") as rc:
        with pytest.raises(RecorderUnauthorized) as caught:
            await rc.register_meeting("m-1", room_name="r", recording_type="cloud", start_date=START)
        assert caught.value.status_code == 401
        with pytest.raises(RecorderUnauthorized):
            await rc.availability(["m-1"])


async def test_service_without_internal_key_raises_unavailable(
    db_url: str, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, RECORDER_INTERNAL_API_KEY="")
    async with service_factory(env) as svc, RecorderClient(svc.url, INTERNAL_KEY) as rc:
        with pytest.raises(RecorderUnavailable) as caught:
            await rc.get_recordings("m-1")
        assert caught.value.status_code == 503
        assert "RECORDER_INTERNAL_API_KEY" in caught.value.detail


async def test_availability_splits_150_ids_into_two_requests(
    db_url: str, service_factory: ServiceFactory
) -> None:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    ids = [f"m-{i}" for i in range(150)]
    async with (
        service_factory(service_env(db_url)) as svc,
        httpx.AsyncClient(event_hooks={"request": [record]}) as http,
    ):
        rc = RecorderClient(svc.url, INTERNAL_KEY, http=http)
        await rc.register_meeting("m-7", room_name="r", recording_type="cloud", start_date=START)
        await rc.register_meeting("m-120", room_name="r", recording_type="cloud", start_date=START)
        sent.clear()

        found = await rc.availability([*ids, "m-7"])  # a repeated id is asked for once

        assert [len(r.url.params.get_list("meeting_id")) for r in sent] == [100, 50]
        assert found == dict.fromkeys(ids, NOT_AVAILABLE)
        assert await rc.availability([]) == {}
        assert len(sent) == 2  # nothing to ask, no request
        await rc.aclose()
        assert not http.is_closed  # a client passed in belongs to the caller


async def test_unreachable_service_raises_unavailable() -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with RecorderClient(f"http://127.0.0.1:{port}", INTERNAL_KEY, timeout_s=2) as rc:
        with pytest.raises(RecorderUnavailable) as caught:
            await rc.get_recordings("m-1")
        assert caught.value.status_code is None
        assert isinstance(caught.value.__cause__, httpx.TransportError)


def test_client_structs_decode_the_service_response_with_recordings() -> None:
    # No webhook endpoint exists yet to make a recording ready over HTTP, so check the shape directly.
    served = schemas.MeetingRecordings(
        meeting_id="m-1",
        room_name="r",
        recording_type="cloud",
        start_date=START,
        end_date=None,
        store_video=True,
        cloud_recording_available=True,
        cloud_recording_duration=323,
        recordings=[
            schemas.RecordingOut(
                id="r-1",
                type="raw-tracks",
                instance_id="6f1c7a2e-0000-5000-8000-000000000000",
                status="ready",
                daily_recording_id="rec-daily-1",
                s3_key=None,
                duration=323,
                tracks=[schemas.TrackOut("audio", "acme/r/1/alice-audio", 1000)],
                started_at=START,
                ready_at=START + timedelta(minutes=6),
                error=None,
            )
        ],
    )
    got = msgspec.json.decode(msgspec.json.encode(served), type=client.MeetingRecordings)
    assert (got.cloud_recording_available, got.cloud_recording_duration) == (True, 323)
    [rec] = got.recordings
    assert (rec.type, rec.status, rec.daily_recording_id, rec.ready_at) == (
        "raw-tracks",
        "ready",
        "rec-daily-1",
        START + timedelta(minutes=6),
    )
    assert rec.tracks == (client.Track(type="audio", s3_key="acme/r/1/alice-audio", size=1000),)


# list_callbacks / retry_callback are not tested here: the admin endpoints are not merged yet.


# ---------------------------------------------------------------------------------------------- callbacks

RAW_DATA = RawTracksReadyData(
    meeting_id="0b5e8c2e-7a77-4d5b-9d7e-2f1f9c1f3c11",
    room_name="standup-20261124100000",
    recording_id="rec-daily-1",
    bucket="reflector-recordings",
    track_keys=("acme/standup/1732442400000/alice-audio", "acme/standup/1732442400000/bob-audio"),
    tracks=(
        CallbackTrack(type="audio", s3_key="acme/standup/1732442400000/alice-audio", size=1000),
        CallbackTrack(type="video", s3_key="acme/standup/1732442400000/alice-video", size=None),
        CallbackTrack(type="audio", s3_key="acme/standup/1732442400000/bob-audio", size=2000),
    ),
    start_ts=1732442400,
    duration=323,
)


def _signed(secret: str, body: bytes, at: datetime, msg_id: str = "msg_1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def test_verify_callback_accepts_a_standard_webhooks_signature_and_decodes_raw_tracks() -> None:
    secret = new_callback_secret()
    body = encode_callback(RAW_DATA, START)  # the service's own payload encoding
    event = verify_callback(_signed(secret, body, START), body, secret, now=START + timedelta(seconds=10))

    assert isinstance(event, CallbackEvent)
    assert event.type == RAW_TRACKS_READY
    assert event.timestamp == START
    assert event.data.meeting_id == RAW_DATA.meeting_id
    assert event.data.bucket == "reflector-recordings"
    assert event.data.track_keys == RAW_DATA.track_keys
    assert [(t.type, t.s3_key, t.size) for t in event.data.tracks] == [
        (t.type, t.s3_key, t.size) for t in RAW_DATA.tracks
    ]
    assert (event.data.start_ts, event.data.duration, event.data.s3_key) == (1732442400, 323, None)


def test_verify_callback_decodes_cloud_ready_and_ignores_unknown_fields() -> None:
    secret = new_callback_secret()
    cloud = CloudReadyData(
        meeting_id="m-1",
        room_name="standup-20261124100000",
        recording_id="rec-daily-2",
        bucket="b",
        s3_key="acme/standup/1732442400000",
        duration=None,
        start_ts=1732442400,
    )
    payload = msgspec.json.decode(encode_callback(cloud, START))
    payload["data"]["future_field"] = 1
    payload["future_envelope_field"] = "x"
    body = msgspec.json.encode(payload)
    headers = {k.title(): v for k, v in _signed(secret, body, START).items()}  # header names are case-free

    event = verify_callback(headers, body, secret, now=START)

    assert isinstance(event, CallbackEvent)
    assert event.type == CLOUD_READY
    assert event.data.s3_key == "acme/standup/1732442400000"
    assert event.data.duration is None
    assert event.data.track_keys == ()


def test_verify_callback_accepts_any_listed_v1_signature() -> None:
    old, new = new_callback_secret(), new_callback_secret()
    body = encode_callback(RAW_DATA, START)
    headers = _signed(new, body, START)
    bogus = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"v2,abc {bogus} v1,not-base64!! {headers['webhook-signature']}"
    event = verify_callback(headers, body, new, now=START)
    assert isinstance(event, CallbackEvent)
    assert event.data.meeting_id == RAW_DATA.meeting_id
    with pytest.raises(InvalidCallbackSignature):
        verify_callback(headers, body, old, now=START)


def _tampered_body(secret: str, body: bytes) -> Signed:
    return _signed(secret, body, START), body.replace(b"alice", b"mallory"), secret, START


def _wrong_secret(secret: str, body: bytes) -> Signed:
    return _signed(secret, body, START), body, new_callback_secret(), START


def _stale(secret: str, body: bytes) -> Signed:
    return _signed(secret, body, START), body, secret, START + timedelta(seconds=301)


def _from_the_future(secret: str, body: bytes) -> Signed:
    return _signed(secret, body, START), body, secret, START - timedelta(seconds=301)


def _missing_header(name: str) -> RejectCase:
    def case(secret: str, body: bytes) -> Signed:
        headers = _signed(secret, body, START)
        del headers[name]
        return headers, body, secret, START

    case.__name__ = f"missing_{name}"
    return case


def _non_integer_timestamp(secret: str, body: bytes) -> Signed:
    headers = _signed(secret, body, START)
    headers["webhook-timestamp"] += ".0"
    return headers, body, secret, START


def _malformed_secret(secret: str, body: bytes) -> Signed:
    return _signed(secret, body, START), body, "whsec_not*base64", START


@pytest.mark.parametrize(
    "case",
    [
        _tampered_body,
        _wrong_secret,
        _stale,
        _from_the_future,
        _missing_header("webhook-id"),
        _missing_header("webhook-timestamp"),
        _missing_header("webhook-signature"),
        _non_integer_timestamp,
        _malformed_secret,
    ],
    ids=lambda c: getattr(c, "__name__", "case").lstrip("_"),
)
def test_verify_callback_rejects(case: RejectCase) -> None:
    secret = new_callback_secret()
    body = encode_callback(RAW_DATA, START)
    headers, sent_body, used_secret, now = case(secret, body)
    with pytest.raises(InvalidCallbackSignature):
        verify_callback(headers, sent_body, used_secret, now=now)


def test_verify_callback_tolerance_is_configurable() -> None:
    secret = new_callback_secret()
    body = encode_callback(RAW_DATA, START)
    headers = _signed(secret, body, START)
    verify_callback(headers, body, secret, now=START + timedelta(seconds=50), tolerance_s=60)
    with pytest.raises(InvalidCallbackSignature):
        verify_callback(headers, body, secret, now=START + timedelta(seconds=61), tolerance_s=60)


def test_a_signed_body_that_is_not_an_event_is_an_invalid_payload() -> None:
    secret = new_callback_secret()
    for body in (
        b"not json",
        b'{"type": "recording.raw_tracks_ready"}',
        b'{"type": "recording.cloud_ready",'
        b' "timestamp": "2026-11-24T10:00:00Z", "data": {"meeting_id": "m", "room_name": "r",'
        b' "recording_id": "x", "bucket": "b", "start_ts": 1}}',
    ):
        with pytest.raises(InvalidCallbackPayload):
            verify_callback(_signed(secret, body, START), body, secret, now=START)


async def test_callback_admin_calls_list_and_retry_dead_callbacks(
    db_url: str, service_factory: ServiceFactory
) -> None:
    from tests.integration.test_callbacks import callback_env, raw_tracks_ready
    from tests.integration.test_webhooks import register
    from tests.plugins.receiver import CallbackReceiver

    async with CallbackReceiver() as receiver:
        receiver.respond_with(503)
        env = callback_env(db_url, receiver, RECORDER_CALLBACK_RETRY_SECONDS="0.05")
        async with service_factory(env) as svc, RecorderClient(svc.url, INTERNAL_KEY) as rc:
            await register(svc, "m-1")
            await raw_tracks_ready(svc.client)
            for _ in range(100):
                dead = await rc.list_callbacks("dead")
                if dead:
                    break
                await asyncio.sleep(0.05)
            [cb] = dead
            assert (cb.event_type, cb.meeting_id, cb.attempts) == ("recording.raw_tracks_ready", "m-1", 2)
            receiver.respond_with(None)
            retried = await rc.retry_callback(cb.id)
            assert retried.state == "pending"
            await receiver.wait_for(1)
            for _ in range(100):  # the service records the outcome just after the receiver answers
                delivered = await rc.list_callbacks("delivered")
                if delivered:
                    break
                await asyncio.sleep(0.05)
            assert [c.id for c in delivered] == [cb.id]
            with pytest.raises(RecorderNotFound):
                await rc.retry_callback("msg_unknown")


def test_verify_callback_decodes_a_relayed_daily_event() -> None:
    secret = new_callback_secret()
    daily = {"version": "1.0.0", "type": "participant.joined", "id": "evt-1", "payload": {"room": "r"}}
    body = encode_daily_event(json.dumps(daily).encode(), START)
    event = verify_callback(_signed(secret, body, START), body, secret, now=START)
    assert isinstance(event, DailyEventCallback)
    assert (event.type, event.data) == ("daily.event", daily)
