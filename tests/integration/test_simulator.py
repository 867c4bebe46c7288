"""The Daily simulator over real HTTP: REST rules, pagination, webhooks, faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aioboto3
import httpx
import pytest
from litestar import Litestar, Request, Response, post
from moto.server import ThreadedMotoServer

from recorder_service.tools.asgi_server import serve_in_task
from recorder_service.tools.simulator import RESERVED_INSTANCE_ID, SimulatorConfig, sign_webhook
from tests.plugins.simulator import DailySim, DailySimFactory
from tests.support.paths import DAILY_FIXTURES

SECRET_B64 = base64.b64encode(b"simulator-test-secret-0123456789").decode()
INSTANCE = "0f8e4d2c-6a1b-4c3d-9e7f-112233445566"
OTHER_INSTANCE = "3f018bd7-ad31-5efd-afb6-85fbcd63345d"
Json = dict[str, Any]


def signature_is_valid(secret_b64: str, timestamp: str, raw_body: bytes, signature: str) -> bool:
    """Reference §8, written independently of the simulator's signer."""
    mac = hmac.new(base64.b64decode(secret_b64), timestamp.encode() + b"." + raw_body, hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), signature)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Json:
        result: Json = json.loads(self.body)
        return result


@dataclass
class WebhookReceiver:
    url: str = ""
    status: int = 200
    requests: list[Received] = field(default_factory=list)

    def events(self, event_type: str | None = None) -> list[Received]:
        found = [r for r in self.requests if "type" in r.json]
        return [r for r in found if event_type is None or r.json["type"] == event_type]

    async def wait_for(self, event_type: str, count: int = 1, timeout_s: float = 5.0) -> list[Received]:
        await eventually(lambda: len(self.events(event_type)) >= count, timeout_s)
        return self.events(event_type)


async def eventually(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    state = WebhookReceiver()

    @post("/hook", status_code=200)
    async def hook(request: Request[Any, Any, Any]) -> Response[bytes]:
        state.requests.append(Received(dict(request.headers), await request.body()))
        return Response(b"", status_code=state.status)

    async with serve_in_task(Litestar([hook], openapi_config=None, logging_config=None)) as url:
        state.url = f"{url}/hook"
        yield state


@pytest.fixture
async def api(daily_sim: DailySim) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=daily_sim.base_url, headers=daily_sim.auth_headers) as client:
        yield client


async def start(api: httpx.AsyncClient, room: str, **body: Any) -> httpx.Response:
    return await api.post(f"/rooms/{room}/recordings/start", json=body)


async def test_start_before_anyone_joined_is_not_hosting(api: httpx.AsyncClient) -> None:
    response = await start(api, "empty-room", type="cloud", instanceId=INSTANCE)
    assert response.status_code == 404
    assert response.json()["error"] == "not-found"
    assert "does not seem to be hosting a call" in response.json()["info"]


async def test_room_hosts_a_call_only_after_hosting_delay(daily_sim_factory: DailySimFactory) -> None:
    sim = await daily_sim_factory(SimulatorConfig(hosting_delay_s=0.3))
    await sim.join("slow-room")
    async with httpx.AsyncClient(base_url=sim.base_url) as api:
        assert (await start(api, "slow-room", instanceId=INSTANCE)).status_code == 404
        await asyncio.sleep(0.35)
        response = await start(api, "slow-room", instanceId=INSTANCE)
    assert response.status_code == 200
    assert response.json() == {"status": "sent"}


async def test_second_start_of_running_instance_has_active_stream(
    daily_sim: DailySim, api: httpx.AsyncClient
) -> None:
    await daily_sim.join("room-a")
    assert (await start(api, "room-a", type="raw-tracks", instanceId=INSTANCE)).status_code == 200
    again = await start(api, "room-a", type="raw-tracks", instanceId=INSTANCE)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid-request-error"
    assert "has an active stream" in again.json()["info"]
    assert len(await daily_sim.recordings()) == 1


async def test_cloud_and_raw_tracks_cannot_share_an_instance(
    daily_sim: DailySim, api: httpx.AsyncClient
) -> None:
    await daily_sim.join("room-b")
    assert (await start(api, "room-b", type="cloud", instanceId=INSTANCE)).status_code == 200
    mixed = await start(api, "room-b", type="raw-tracks", instanceId=INSTANCE)
    assert mixed.status_code == 400
    assert "has an active stream" not in mixed.json()["info"]
    assert (await start(api, "room-b", type="raw-tracks", instanceId=OTHER_INSTANCE)).status_code == 200


async def test_reserved_and_malformed_instance_ids_are_rejected(
    daily_sim: DailySim, api: httpx.AsyncClient
) -> None:
    await daily_sim.join("room-c")
    assert (await start(api, "room-c", instanceId=RESERVED_INSTANCE_ID)).status_code == 400
    assert (await start(api, "room-c", instanceId="not-a-uuid")).status_code == 400
    assert (await start(api, "room-c", type="local")).status_code == 400
    assert (await start(api, "room-c")).status_code == 200
    [recording] = await daily_sim.recordings()
    assert (recording["instance_id"], recording["type"]) == (RESERVED_INSTANCE_ID, "cloud")


async def test_meeting_end_finishes_recordings_listed_without_type(
    daily_sim: DailySim, api: httpx.AsyncClient
) -> None:
    alice = await daily_sim.join("standup", "Alice")
    assert (await start(api, "standup", type="cloud", instanceId=INSTANCE)).status_code == 200
    assert (await start(api, "standup", type="raw-tracks", instanceId=OTHER_INSTANCE)).status_code == 200
    bob = await daily_sim.join("standup", "Bob")
    listed = (await api.get("/recordings")).json()
    assert all(r["status"] == "in-progress" and "duration" not in r for r in listed["data"])

    await daily_sim.end_meeting("standup")

    listed = (await api.get("/recordings", params={"room_name": "standup"})).json()
    assert listed["total_count"] == 2
    by_id = {r["id"]: r for r in listed["data"]}
    kinds = {r["id"]: r["type"] for r in await daily_sim.recordings()}
    for rec in by_id.values():
        assert "type" not in rec
        assert rec["status"] == "finished"
        assert rec["duration"] >= 1
        assert rec["max_participants"] == 2
        assert re.fullmatch(r"sim-domain/standup/\d{13}", rec["s3key"])
    cloud = next(r for i, r in by_id.items() if kinds[i] == "cloud")
    raw = next(r for i, r in by_id.items() if kinds[i] == "raw-tracks")
    assert cloud["tracks"] == []
    assert sorted(t["type"] for t in raw["tracks"]) == ["audio", "audio", "video", "video"]
    for person in (alice, bob):
        assert any(
            re.fullmatch(rf"{raw['s3key']}-{person}-cam-audio-\d{{13}}", t["s3Key"]) for t in raw["tracks"]
        )
    single = (await api.get(f"/recordings/{cloud['id']}")).json()
    assert single == cloud
    assert (await api.get(f"/recordings/{uuid.uuid4()}")).status_code == 404


async def test_recordings_pagination_follows_cursors(daily_sim: DailySim, api: httpx.AsyncClient) -> None:
    await daily_sim.join("busy")
    for _ in range(105):
        assert (await start(api, "busy", instanceId=INSTANCE)).status_code == 200
        assert (
            await api.post("/rooms/busy/recordings/stop", json={"instanceId": INSTANCE})
        ).status_code == 200
    first = (await api.get("/recordings")).json()
    assert (first["total_count"], len(first["data"])) == (105, 100)

    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        page = [r["id"] for r in (await api.get("/recordings", params=params)).json()["data"]]
        if not page:
            break
        pages.append(page)
        params = {"limit": 10, "starting_after": page[-1]}
    everything = [i for page in pages for i in page]
    assert len(everything) == len(set(everything)) == 105
    assert everything[:100] == [r["id"] for r in first["data"]]
    starts = {r["id"]: (int(r["start_ts"]), r["id"]) for r in await daily_sim.recordings()}
    assert [starts[i] for i in everything] == sorted(starts.values(), reverse=True)

    back = (await api.get("/recordings", params={"limit": 10, "ending_before": pages[2][0]})).json()
    assert [r["id"] for r in back["data"]] == pages[1]
    oldest = (await api.get("/recordings", params={"limit": 10, "ending_before": "OLDEST"})).json()
    assert [r["id"] for r in oldest["data"]] == everything[-10:]
    assert (await api.get("/recordings", params={"limit": 101})).status_code == 400


async def test_webhook_creation_sends_signed_verification(
    daily_sim: DailySim, receiver: WebhookReceiver, api: httpx.AsyncClient
) -> None:
    hook = await daily_sim.create_webhook(receiver.url, SECRET_B64)
    assert (hook["state"], hook["failedCount"], hook["hmac"]) == ("ACTIVE", 0, SECRET_B64)
    [verification] = receiver.requests
    assert verification.json == {"test": "test"}
    headers = verification.headers
    assert signature_is_valid(
        SECRET_B64, headers["x-webhook-timestamp"], verification.body, headers["x-webhook-signature"]
    )
    assert (await api.get("/webhooks")).json() == [hook]

    receiver.status = 500
    refused = await api.post("/webhooks", json={"url": receiver.url})
    assert refused.status_code == 400
    generated = await api.post("/webhooks", json={"url": receiver.url.replace("/hook", "/nowhere")})
    assert generated.status_code == 400
    assert len((await api.get("/webhooks")).json()) == 1


async def test_webhook_without_hmac_gets_a_generated_secret(
    receiver: WebhookReceiver, api: httpx.AsyncClient
) -> None:
    hook = (await api.post("/webhooks", json={"url": receiver.url})).json()
    assert len(base64.b64decode(hook["hmac"])) >= 16
    [verification] = receiver.requests
    headers = verification.headers
    assert signature_is_valid(
        hook["hmac"], headers["x-webhook-timestamp"], verification.body, headers["x-webhook-signature"]
    )


async def test_recording_webhooks_are_signed_with_float_event_ts(
    daily_sim: DailySim, receiver: WebhookReceiver, api: httpx.AsyncClient
) -> None:
    await daily_sim.create_webhook(receiver.url, SECRET_B64)
    session_id = await daily_sim.join("signed-room", "Alice")
    assert (await start(api, "signed-room", type="raw-tracks", instanceId=OTHER_INSTANCE)).status_code == 200
    stop = await api.post(
        "/rooms/signed-room/recordings/stop", json={"type": "raw-tracks", "instanceId": OTHER_INSTANCE}
    )
    assert stop.status_code == 200

    [ready] = await receiver.wait_for("recording.ready-to-download")
    assert signature_is_valid(
        SECRET_B64, ready.headers["x-webhook-timestamp"], ready.body, ready.headers["x-webhook-signature"]
    )
    assert re.search(rb'"event_ts":\d+\.\d+', ready.body)
    event = ready.json
    assert event["version"] == "1.0.0"
    payload = event["payload"]
    assert (payload["type"], payload["status"], payload["room_name"]) == (
        "raw-tracks",
        "finished",
        "signed-room",
    )
    assert payload["s3_key"].startswith("sim-domain/signed-room/")
    assert len(payload["tracks"]) == 2
    assert payload["duration"] >= 1

    [started] = receiver.events("recording.started")
    assert "room_name" not in started.json["payload"]
    assert started.json["payload"]["instance_id"] == OTHER_INSTANCE
    assert started.json["payload"]["recording_id"] == payload["recording_id"]
    [joined] = receiver.events("participant.joined")
    assert joined.json["payload"]["room"] == "signed-room"
    assert joined.json["payload"]["session_id"] == session_id
    ids = [r.json["id"] for r in receiver.events()]
    assert len(ids) == len(set(ids))
    assert [r.json["type"] for r in receiver.events()] == [
        "meeting.started",
        "participant.joined",
        "recording.started",
        "recording.ready-to-download",
    ]


async def test_signer_matches_the_reference_example() -> None:
    example = json.loads((DAILY_FIXTURES / "webhook-signature-example.json").read_text())
    timestamp = example["headers"]["X-Webhook-Timestamp"]
    expected = example["headers"]["X-Webhook-Signature"]
    secret = example["hmac_secret_base64"]
    assert sign_webhook(secret, timestamp, example["raw_body"].encode()) == expected
    assert signature_is_valid(secret, timestamp, example["raw_body"].encode(), expected)
    assert sign_webhook(secret, timestamp, example["tampered_raw_body"].encode()) != expected
    assert not signature_is_valid(secret, timestamp, example["tampered_raw_body"].encode(), expected)


async def test_circuit_breaker_fails_after_three_errors_and_reactivates(
    daily_sim: DailySim, receiver: WebhookReceiver, api: httpx.AsyncClient
) -> None:
    hook = await daily_sim.create_webhook(receiver.url, SECRET_B64)
    receiver.status = 500
    await daily_sim.join("cb-room")  # meeting.started + participant.joined
    await daily_sim.join("cb-room")  # participant.joined

    async def state() -> Json:
        result: Json = (await api.get(f"/webhooks/{hook['uuid']}")).json()
        return result

    await receiver.wait_for("participant.joined", count=2)
    await eventually(lambda: len(receiver.events()) == 3)
    current = await state()
    assert (current["state"], current["failedCount"]) == ("FAILED", 3)

    receiver.status = 200
    await daily_sim.join("cb-room")
    await asyncio.sleep(0.2)
    assert len(receiver.events()) == 3

    reactivated = (await api.post(f"/webhooks/{hook['uuid']}", json={"url": receiver.url})).json()
    assert (reactivated["state"], reactivated["failedCount"]) == ("ACTIVE", 0)
    await daily_sim.join("cb-room")
    await receiver.wait_for("participant.joined", count=3)


async def test_exponential_retry_delivers_after_failures(
    daily_sim: DailySim, receiver: WebhookReceiver, api: httpx.AsyncClient
) -> None:
    hook = await daily_sim.create_webhook(receiver.url, SECRET_B64, ["meeting.started"], "exponential")
    receiver.status = 503
    await daily_sim.join("retry-room")
    await eventually(lambda: len(receiver.events()) == 2)
    receiver.status = 200
    await eventually(lambda: len(receiver.events()) == 3)
    assert (await api.get(f"/webhooks/{hook['uuid']}")).json()["state"] == "ACTIVE"
    statuses = [
        d["status_code"] for d in await daily_sim.deliveries() if d["event_type"] == "meeting.started"
    ]
    assert statuses == [503, 503, 200]


async def test_paused_webhooks_drop_events(daily_sim: DailySim, receiver: WebhookReceiver) -> None:
    await daily_sim.create_webhook(receiver.url, SECRET_B64, ["participant.joined"])
    await daily_sim.pause_webhooks()
    await daily_sim.join("quiet-room")
    await daily_sim.resume_webhooks()
    await daily_sim.join("quiet-room")
    await receiver.wait_for("participant.joined")
    await asyncio.sleep(0.1)
    assert len(receiver.events()) == 1


async def test_recording_error_is_announced(daily_sim: DailySim, receiver: WebhookReceiver) -> None:
    await daily_sim.create_webhook(receiver.url, SECRET_B64, ["recording.error"])
    await daily_sim.join("err-room")
    recording_id = await daily_sim.client_start("err-room")
    await daily_sim.recording_error(recording_id, "worker exited")
    [error] = await receiver.wait_for("recording.error")
    payload = error.json["payload"]
    assert (payload["instance_id"], payload["room_name"]) == (RESERVED_INSTANCE_ID, "err-room")
    assert isinstance(payload["timestamp"], float)
    [recording] = await daily_sim.recordings()
    assert (recording["status"], recording["via"]) == ("canceled", "client")


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 400, "authorization-header-error"),
        ({"Authorization": "Basic c2ltOmtleQ=="}, 400, "authorization-header-error"),
        ({"Authorization": "Bearer wrong"}, 401, "authentication-error"),
    ],
)
async def test_bad_credentials_get_daily_auth_errors(
    daily_sim: DailySim, headers: dict[str, str], status: int, error: str
) -> None:
    async with httpx.AsyncClient(base_url=daily_sim.base_url) as client:
        response = await client.get("/recordings", headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error


async def test_injected_faults_answer_then_clear(daily_sim: DailySim, api: httpx.AsyncClient) -> None:
    await daily_sim.join("faulty")
    await daily_sim.fault("start_recording", 503, count=2)
    first = await start(api, "faulty", instanceId=INSTANCE)
    assert (first.status_code, first.json()["error"]) == (503, "server-error")
    assert (await start(api, "faulty", instanceId=INSTANCE)).status_code == 503
    assert (await start(api, "faulty", instanceId=INSTANCE)).status_code == 200

    calls = await daily_sim.calls()
    assert calls["operations"]["start_recording"] == {"503": 2, "200": 1}
    assert calls["starts"] == [{"room_name": "faulty", "type": "cloud", "instance_id": INSTANCE, "count": 1}]

    await daily_sim.fault("*", 0, latency_s=0.2)
    began = time.monotonic()
    assert (await api.get("/recordings")).status_code == 200
    assert time.monotonic() - began >= 0.2
    await daily_sim.latency("get_recording", 0.15)
    began = time.monotonic()
    assert (await api.get(f"/recordings/{uuid.uuid4()}")).status_code == 404
    assert time.monotonic() - began >= 0.15


async def test_start_rate_limit_answers_429(daily_sim_factory: DailySimFactory) -> None:
    sim = await daily_sim_factory(SimulatorConfig(start_rate_limit=(2, 60.0)))
    await sim.join("limited")
    async with httpx.AsyncClient(base_url=sim.base_url) as api:
        assert (await start(api, "limited", instanceId=INSTANCE)).status_code == 200
        assert (await start(api, "limited", instanceId=OTHER_INSTANCE)).status_code == 200
        limited = await start(api, "limited", instanceId=str(uuid.uuid4()))
    assert (limited.status_code, limited.json()["error"]) == (429, "rate-limit-error")


async def test_last_participant_leaving_ends_the_meeting(
    daily_sim: DailySim, receiver: WebhookReceiver, api: httpx.AsyncClient
) -> None:
    await daily_sim.create_webhook(receiver.url, SECRET_B64, ["meeting.ended", "recording.ready-to-download"])
    session_id = await daily_sim.join("short")
    await daily_sim.client_start("short", "cloud-audio-only", INSTANCE)
    presence = (await api.get("/rooms/short/presence")).json()
    assert presence["total_count"] == 1
    assert presence["data"][0]["id"] == session_id
    await daily_sim.leave("short", session_id)
    [ready] = await receiver.wait_for("recording.ready-to-download")
    assert ready.json["payload"]["type"] == "cloud-audio-only"
    assert "tracks" not in ready.json["payload"]
    await receiver.wait_for("meeting.ended")
    assert (await api.get("/rooms/short/presence")).json()["total_count"] == 0


async def test_finished_recordings_are_written_to_the_bucket_before_ready(
    daily_sim_factory: DailySimFactory, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        session = aioboto3.Session()
        async with session.client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3:
            await s3.create_bucket(Bucket="recordings")
            sim = await daily_sim_factory(SimulatorConfig(s3_endpoint_url=endpoint, s3_bucket="recordings"))
            await sim.create_webhook(receiver.url, SECRET_B64, ["recording.ready-to-download"])
            await sim.join("bucket-room")
            await sim.client_start("bucket-room", "cloud", INSTANCE)
            await sim.client_start("bucket-room", "raw-tracks", OTHER_INSTANCE)
            await sim.end_meeting("bucket-room")
            ready = await receiver.wait_for("recording.ready-to-download", count=2)
            by_type = {r.json["payload"]["type"]: r.json["payload"] for r in ready}
            cloud = await s3.get_object(Bucket="recordings", Key=by_type["cloud"]["s3_key"])
            assert (await cloud["Body"].read())[4:8] == b"ftyp"
            for track in by_type["raw-tracks"]["tracks"]:
                head = await s3.head_object(Bucket="recordings", Key=track["s3Key"])
                assert head["ContentLength"] == track["size"]
    finally:
        moto.stop()


def test_cli_needs_the_bucket_and_its_endpoint_together() -> None:
    """`simulate-daily --s3-endpoint-url U --s3-bucket B` writes recordings like Daily's custom
    bucket (deploy/image_check.py runs it so); one without the other is refused."""
    result = subprocess.run(
        [sys.executable, "-m", "recorder_service.cli", "simulate-daily", "--s3-bucket", "recordings"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--s3-endpoint-url and --s3-bucket go together" in result.stderr
