"""Helpers of the recording-privacy tests: a service with the deletion loop running, ready
recordings whose objects really are in the bucket, and waiting on deletion jobs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from recorder_service.core.models import RecordingType, instance_id_for
from tests.integration.test_webhooks import ROOM, T0
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import AUTH, service_env
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def privacy_env(
    db_url: str, s3: S3Bucket, receiver: CallbackReceiver | None = None, **over: str
) -> dict[str, str]:
    """A service whose background loops run (deletions, outbox), with short retry delays."""
    env = {
        "RECORDER_S3_BUCKET": s3.bucket,
        "RECORDER_S3_ENDPOINT_URL": s3.endpoint_url,
        "RECORDER_S3_REGION": s3.region,
        "RECORDER_BACKGROUND": "true",
        "RECORDER_DELETION_RETRY_SECONDS": "0.2",
        "RECORDER_DELETION_POLL_SECONDS": "0.5",
        "RECORDER_CALLBACK_RETRY_SECONDS": "0.2,0.2,0.2,0.2,0.2",
        "RECORDER_CALLBACK_TIMEOUT_SECONDS": "2",
        "RECORDER_RECONCILE_INTERVAL_SECONDS": "3600",
        "RECORDER_INBOX_SWEEP_SECONDS": "0.5",
    }
    if receiver is not None:
        env |= {"RECORDER_CALLBACK_URL": receiver.url, "RECORDER_CALLBACK_SECRET": receiver.secret}
    return service_env(db_url, **(env | over))


async def cloud_ready(
    client: httpx.AsyncClient,
    s3: S3Bucket,
    *,
    offset_s: float = 60,
    room: str = ROOM,
    key: str | None = None,
    data: bytes = VIDEO,
) -> dict[str, Any]:
    """A cloud recording.ready-to-download whose object is in the bucket; returns the payload."""
    start_ts = T0.timestamp() + offset_s
    key = key or f"acme/{room}/{int(start_ts * 1000)}"
    await s3.put(key, data)
    payload = ready_payload(room=room, start_ts=start_ts, s3_key=key, duration=321)
    r = await post_webhook(client, envelope("recording.ready-to-download", payload))
    assert r.status_code == 200, r.text
    return payload


async def raw_ready(
    client: httpx.AsyncClient,
    s3: S3Bucket,
    *,
    offset_s: float = 5,
    room: str = ROOM,
    recording_id: str | None = None,
) -> dict[str, Any]:
    """A raw-tracks ready event (two audio tracks, one video) whose files are in the bucket."""
    start_ts = T0.timestamp() + offset_s
    tracks = raw_tracks(room, start_ts)
    for track in tracks:
        await s3.put(track["s3Key"], b"webm " + track["type"].encode())
    payload = ready_payload(
        room=room, start_ts=start_ts, type_="raw-tracks", tracks=tracks, recording_id=recording_id
    )
    r = await post_webhook(client, envelope("recording.ready-to-download", payload))
    assert r.status_code == 200, r.text
    return payload


def track_keys(payload: dict[str, Any], kind: str | None = None) -> list[str]:
    return [t["s3Key"] for t in payload["tracks"] if kind is None or t["type"] == kind]


async def started(
    client: httpx.AsyncClient,
    meeting_id: str,
    *,
    rec_type: RecordingType = "raw-tracks",
    room: str = ROOM,
    offset_s: float = 5,
) -> str:
    """recording.started for the meeting's derived instanceId; returns Daily's recording id."""
    daily_id = str(uuid.uuid4())
    payload = {
        "recording_id": daily_id,
        "action": "start-raw-tracks-recording" if rec_type == "raw-tracks" else "start-cloud-recording",
        "instance_id": instance_id_for(meeting_id, rec_type),
        "room_name": room,
        "start_ts": T0.timestamp() + offset_s,
        "started_by": "p1",
        "layout": {"preset": "default"},
    }
    r = await post_webhook(client, envelope("recording.started", payload))
    assert r.json()["state"] == "applied", r.text
    return daily_id


async def deletions(client: httpx.AsyncClient, state: str | None = None) -> list[dict[str, Any]]:
    r = await client.get("/v1/deletions", params={"state": state} if state else {}, headers=AUTH)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["deletions"]
    return result


async def wait_deletions_done(
    client: httpx.AsyncClient, count: int, timeout_s: float = 20
) -> list[dict[str, Any]]:
    """Waits until `count` jobs are done and none is pending or waiting."""
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = await deletions(client)
        if len([j for j in jobs if j["state"] == "done"]) >= count and all(
            j["state"] == "done" for j in jobs
        ):
            return jobs
        assert time.monotonic() < deadline, f"deletions not done after {timeout_s} s: {jobs}"
        await asyncio.sleep(0.1)


async def recordings_of(client: httpx.AsyncClient, meeting_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/meetings/{meeting_id}/recordings", headers=AUTH)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def deleted_callbacks(receiver: CallbackReceiver) -> list[dict[str, Any]]:
    return [d.payload for d in receiver.accepted if d.payload["type"] == "recording.deleted"]


async def wait_deleted_callbacks(
    receiver: CallbackReceiver, count: int, timeout_s: float = 15
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while len(deleted_callbacks(receiver)) < count:
        assert time.monotonic() < deadline, f"{count} recording.deleted expected: {receiver.all_requests}"
        await asyncio.sleep(0.05)
    return deleted_callbacks(receiver)
