"""Deleting recordings (contract §5): deleted at once, every object removed from the bucket in
the background until S3 confirms, announced once, idempotent; and the faults around it."""

from __future__ import annotations

import asyncio
import select
import socket
import time
import uuid

import httpx
import pytest

from tests.integration.test_webhooks import ROOM, T0, register, register_with
from tests.plugins.processes import replicas
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.s3 import DedicatedS3Bucket, S3Bucket
from tests.plugins.service import AUTH, ServiceFactory, playback
from tests.support.privacy import (
    cloud_ready,
    deleted_callbacks,
    deletions,
    privacy_env,
    raw_ready,
    recordings_of,
    started,
    track_keys,
    wait_deleted_callbacks,
    wait_deletions_done,
)
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload, until_applied


async def test_delete_removes_every_object_announces_once_and_is_idempotent(
    db_url: str, s3: S3Bucket, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    async with service_factory(privacy_env(db_url, s3, callback_receiver)) as svc:
        await register(svc, "m-1")
        await register(svc, "m-2", room="other-room")
        raw = await raw_ready(svc.client, s3)
        cloud = await cloud_ready(svc.client, s3)
        other = await cloud_ready(svc.client, s3, room="other-room")  # another meeting's: stays
        await callback_receiver.wait_for(3)  # the ready callbacks
        assert len(await s3.keys()) == 5

        r = await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)
        assert r.status_code == 202, r.text
        ids = r.json()["deleted"]
        m = await recordings_of(svc.client, "m-1")
        assert sorted(ids) == sorted(rec["id"] for rec in m["recordings"])
        # At once: never available or played back again.
        assert {rec["status"] for rec in m["recordings"]} == {"deleted"}
        assert (m["cloud_recording_available"], m["cloud_recording_duration"]) == (False, None)
        availability = await svc.client.get(
            "/v1/recordings/availability", params={"meeting_id": "m-1"}, headers=AUTH
        )
        assert availability.json()["meetings"]["m-1"]["cloud_recording_available"] is False
        playback_answer = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert playback_answer.status_code == 404
        link = await svc.client.get("/v1/meetings/m-1/cloud-recording/link", headers=AUTH)
        assert link.status_code == 404

        jobs = await wait_deletions_done(svc.client, 2)
        assert {j["reason"] for j in jobs} == {"request"}
        assert await s3.keys() == [other["s3_key"]]  # listed, not assumed
        announced = await wait_deleted_callbacks(callback_receiver, 2)
        assert sorted(
            (a["data"]["recording_id"], a["data"]["type"], a["data"]["reason"], a["data"]["meeting_id"])
            for a in announced
        ) == sorted(
            [
                (raw["recording_id"], "raw-tracks", "request", "m-1"),
                (cloud["recording_id"], "cloud", "request", "m-1"),
            ]
        )

        # Again: the same ids, and nothing else happens.
        again = await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)
        assert (again.status_code, sorted(again.json()["deleted"])) == (202, sorted(ids))
        assert len(await deletions(svc.client)) == 2
        outbox = (await svc.client.get("/v1/callbacks", headers=AUTH)).json()["callbacks"]
        assert [c["event_type"] for c in outbox].count("recording.deleted") == 2
        assert (await recordings_of(svc.client, "m-2"))["cloud_recording_available"] is True


async def test_filters_and_bad_input(db_url: str, s3: S3Bucket, service_factory: ServiceFactory) -> None:
    async with service_factory(privacy_env(db_url, s3)) as svc:
        path = "/v1/meetings/m-1/recordings"
        assert (await svc.client.delete(path)).status_code == 401
        assert (await svc.client.delete(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        missing = await svc.client.delete(path, headers=AUTH)
        assert (missing.status_code, missing.json()["status_code"]) == (404, 404)
        await register(svc, "m-1")
        assert (await svc.client.delete(path, headers=AUTH)).json() == {"deleted": []}
        bad = await svc.client.delete(path, params={"type": "cloud-audio"}, headers=AUTH)
        assert (bad.status_code, bad.json()["status_code"]) == (400, 400)
        assert (
            await svc.client.delete(path, params={"recording_id": "nope"}, headers=AUTH)
        ).status_code == 404
        assert (await svc.client.delete("/v1/meetings/bad id!/recordings", headers=AUTH)).status_code == 400

        raw = await raw_ready(svc.client, s3)
        first = await cloud_ready(svc.client, s3, offset_s=60)
        second = await cloud_ready(svc.client, s3, offset_s=600)
        by_daily = {
            r["daily_recording_id"]: r["id"] for r in (await recordings_of(svc.client, "m-1"))["recordings"]
        }
        # One recording, by Daily's id: the other cloud recording becomes the one played.
        r = await svc.client.delete(path, params={"recording_id": second["recording_id"]}, headers=AUTH)
        assert r.json() == {"deleted": [by_daily[second["recording_id"]]]}
        m = await recordings_of(svc.client, "m-1")
        assert m["cloud_recording_available"] is True
        redirect = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert first["s3_key"] in redirect.headers["location"]
        # One type.
        r = await svc.client.delete(path, params={"type": "cloud"}, headers=AUTH)
        assert sorted(r.json()["deleted"]) == sorted(
            [by_daily[first["recording_id"]], by_daily[second["recording_id"]]]
        )
        statuses = {
            rec["daily_recording_id"]: rec["status"]
            for rec in (await recordings_of(svc.client, "m-1"))["recordings"]
        }
        assert statuses[raw["recording_id"]] == "ready"
        await wait_deletions_done(svc.client, 2)
        assert sorted(await s3.keys()) == sorted(track_keys(raw))


async def test_a_recording_deleted_while_recorded_is_deleted_once_ready(
    db_url: str, s3: S3Bucket, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    async with service_factory(privacy_env(db_url, s3, callback_receiver)) as svc:
        await register(svc, "m-1")
        daily_id = await started(svc.client, "m-1")
        r = await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)
        [recording_id] = r.json()["deleted"]
        [rec] = (await recordings_of(svc.client, "m-1"))["recordings"]
        assert (rec["status"], rec["daily_recording_id"]) == ("deleted", daily_id)
        [job] = await deletions(svc.client)
        assert (job["state"], job["keys"]) == ("waiting", [])
        # Daily finishes it: it never becomes ready, and every file it wrote is deleted.
        raw = await raw_ready(svc.client, s3, recording_id=daily_id)
        [rec] = (await recordings_of(svc.client, "m-1"))["recordings"]
        assert (rec["id"], rec["status"]) == (recording_id, "deleted")
        [job] = await wait_deletions_done(svc.client, 1)
        assert sorted(job["keys"]) == sorted(track_keys(raw))
        assert await s3.keys() == []
        [announced] = await wait_deleted_callbacks(callback_receiver, 1)
        assert announced["data"]["recording_id"] == daily_id
        # The ready event was never announced as a ready recording; a redelivery changes nothing.
        assert [d.payload["type"] for d in callback_receiver.accepted] == ["recording.deleted"]
        await post_webhook(
            svc.client,
            envelope(
                "recording.ready-to-download",
                ready_payload(
                    room=ROOM,
                    start_ts=raw["start_ts"],
                    type_="raw-tracks",
                    tracks=raw["tracks"],
                    recording_id=daily_id,
                ),
            ),
        )
        [rec] = (await recordings_of(svc.client, "m-1"))["recordings"]
        assert rec["status"] == "deleted"


async def test_a_deletion_racing_a_ready_webhook_ends_deleted_and_removed(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(privacy_env(db_url, s3)) as svc:
        rounds = 6
        payloads = []
        for i in range(rounds):
            meeting_id, room = f"race-{i}", f"race-room-{i}"
            await register(svc, meeting_id, room=room)
            daily_id = await started(svc.client, meeting_id, room=room)
            start_ts = T0.timestamp() + 5
            tracks = raw_tracks(room, start_ts)
            for track in tracks:
                await s3.put(track["s3Key"], b"webm")
            payloads.append(
                (
                    meeting_id,
                    ready_payload(
                        room=room, start_ts=start_ts, type_="raw-tracks", tracks=tracks, recording_id=daily_id
                    ),
                )
            )
        # Half the rounds send the deletion first, half the webhook, all at once.
        calls = []
        for i, (meeting_id, payload) in enumerate(payloads):
            delete = svc.client.delete(f"/v1/meetings/{meeting_id}/recordings", headers=AUTH)
            webhook = post_webhook(svc.client, envelope("recording.ready-to-download", payload))
            calls += [delete, webhook] if i % 2 else [webhook, delete]
        answers = await asyncio.gather(*calls)
        assert all(a.status_code in (200, 202) for a in answers), [a.text for a in answers]
        await until_applied(svc.client)
        for meeting_id, _ in payloads:
            [rec] = (await recordings_of(svc.client, meeting_id))["recordings"]
            assert rec["status"] == "deleted", rec
        await wait_deletions_done(svc.client, rounds)
        assert await s3.keys() == []


async def test_s3_down_keeps_deletions_pending_until_it_returns(
    db_url: str,
    s3_dedicated: DedicatedS3Bucket,
    callback_receiver: CallbackReceiver,
    service_factory: ServiceFactory,
) -> None:
    env = privacy_env(db_url, s3_dedicated, callback_receiver, RECORDER_DELETION_RETRY_SECONDS="0.3,0.5")
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        cloud = await cloud_ready(svc.client, s3_dedicated)
        await s3_dedicated.stop()
        r = await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)
        assert r.status_code == 202
        deadline = time.monotonic() + 20
        while True:
            [job] = await deletions(svc.client)
            if job["attempts"] >= 3:
                break
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.1)
        assert job["state"] == "pending"
        assert "S3" in job["last_error"]
        # Meanwhile the recording is never playable, and nothing is announced.
        assert (
            await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        ).status_code == 404
        assert deleted_callbacks(callback_receiver) == []
        await s3_dedicated.start()
        await wait_deletions_done(svc.client, 1)
        assert cloud["s3_key"] not in await s3_dedicated.keys()
        await wait_deleted_callbacks(callback_receiver, 1)


async def test_s3_answering_errors_is_retried(
    db_url: str, s3: S3Bucket, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    # A bucket S3 refuses to delete from (it does not exist: NoSuchBucket), until it does.
    later = f"later-{uuid.uuid4().hex[:12]}"
    env = privacy_env(db_url, s3, callback_receiver, RECORDER_S3_BUCKET=later)
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3)
        await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)
        deadline = time.monotonic() + 20
        while (job := (await deletions(svc.client))[0])["attempts"] < 2:
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.1)
        assert job["state"] == "pending"
        assert "NoSuchBucket" in job["last_error"]
        await s3.create_bucket(later)
        await wait_deletions_done(svc.client, 1)
        await wait_deleted_callbacks(callback_receiver, 1)


@pytest.mark.slow
async def test_a_process_killed_mid_deletion_is_resumed_after_its_lease(
    db_url: str, s3: S3Bucket, callback_receiver: CallbackReceiver
) -> None:
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)  # never accepted: connections wait in the backlog, requests never answered
    hanging_url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    env = privacy_env(db_url, s3, callback_receiver, RECORDER_DELETION_LEASE_SECONDS="2")
    try:
        async with replicas(env | {"RECORDER_S3_ENDPOINT_URL": hanging_url}, 1) as [first]:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
                await register_with(client, "m-1")
                await s3.put("acme/killed/1", b"video")
                payload = ready_payload(room=ROOM, start_ts=T0.timestamp() + 60, s3_key="acme/killed/1")
                r = await post_webhook(client, envelope("recording.ready-to-download", payload))
                assert r.json()["state"] == "applied"
                assert (await client.delete("/v1/meetings/m-1/recordings", headers=AUTH)).status_code == 202
                # The worker has claimed the job and waits on S3, which never answers (a
                # connection waiting in the backlog: the listener is readable).
                deadline = time.monotonic() + 15
                while not select.select([hanging], [], [], 0)[0]:
                    assert time.monotonic() < deadline, "the deletion never reached S3"
                    await asyncio.sleep(0.05)
                [job] = await deletions(client)
                assert (job["state"], job["attempts"]) == ("pending", 0)
            first.kill()
        async with replicas(env, 1) as [second], httpx.AsyncClient(base_url=second.url, timeout=30) as client:
            [job] = await wait_deletions_done(client, 1, timeout_s=30)
            assert job["attempts"] == 1
            assert await s3.keys() == []
            [announced] = await wait_deleted_callbacks(callback_receiver, 1)
            assert announced["data"]["recording_id"] == payload["recording_id"]
    finally:
        hanging.close()
