"""store_video (contract §5) and the whole privacy story through the Daily simulator, which
writes its recordings to the bucket and delivers its real, signed webhooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from recorder_service.tools.simulator import SimulatorConfig
from tests.integration.test_start import MEETING_ID, ROOM, meeting_body
from tests.integration.test_webhooks import ROOM as WEBHOOK_ROOM
from tests.integration.test_webhooks import T0
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import AUTH, WEBHOOK_SECRET, RunningService, ServiceFactory, playback
from tests.plugins.simulator import DailySim, DailySimFactory
from tests.support.privacy import (
    cloud_ready,
    deletions,
    privacy_env,
    recordings_of,
    wait_deleted_callbacks,
    wait_deletions_done,
)


async def _wait(svc: RunningService, predicate: Any, timeout_s: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        m = await recordings_of(svc.client, MEETING_ID)
        if predicate(m):
            return m
        assert time.monotonic() < deadline, m
        await asyncio.sleep(0.1)


async def _simulated(
    db_url: str, s3: S3Bucket, receiver: CallbackReceiver, factory: DailySimFactory
) -> tuple[DailySim, dict[str, str]]:
    sim = await factory(
        SimulatorConfig(
            api_key="sim-key", s3_endpoint_url=s3.endpoint_url, s3_bucket=s3.bucket, s3_region=s3.region
        )
    )
    env = privacy_env(
        db_url, s3, receiver, RECORDER_DAILY_API_URL=sim.base_url, RECORDER_CLOUD_START="server"
    )
    return sim, env


async def test_a_meeting_without_video_never_starts_cloud_and_keeps_only_audio(
    db_url: str,
    s3: S3Bucket,
    callback_receiver: CallbackReceiver,
    daily_sim_factory: DailySimFactory,
    service_factory: ServiceFactory,
) -> None:
    sim, env = await _simulated(db_url, s3, callback_receiver, daily_sim_factory)
    async with service_factory(env) as svc:
        await sim.create_webhook(f"{svc.url}/v1/daily/webhook", WEBHOOK_SECRET)
        put = await svc.client.put(
            f"/v1/meetings/{MEETING_ID}", json=meeting_body(store_video=False), headers=AUTH
        )
        assert (put.status_code, put.json()["store_video"]) == (201, False)
        await asyncio.gather(sim.join(ROOM, "alice"), sim.join(ROOM, "bob"))
        cloud = await svc.client.post(f"/v1/meetings/{MEETING_ID}/recordings/start", json={"type": "cloud"})
        assert cloud.status_code == 409
        assert "video is off for this meeting" in cloud.json()["detail"]
        raw = await svc.client.post(
            f"/v1/meetings/{MEETING_ID}/recordings/start", json={"type": "raw-tracks"}
        )
        assert raw.json()["status"] == "started"
        assert [s["type"] for s in (await sim.calls())["starts"]] == ["raw-tracks"]  # no cloud start, ever
        await _wait(svc, lambda m: m["recordings"] and m["recordings"][0]["daily_recording_id"])
        await asyncio.sleep(1.1)  # a recording lasts at least a second
        await sim.end_meeting(ROOM)
        m = await _wait(svc, lambda m: m["recordings"][0]["status"] == "ready")
        [rec] = m["recordings"]
        written = next(r for r in await sim.recordings() if r["id"] == rec["daily_recording_id"])["tracks"]
        audio = sorted(t["s3Key"] for t in written if t["type"] == "audio")
        video = sorted(t["s3Key"] for t in written if t["type"] == "video")
        assert audio and video
        assert sorted(t["s3_key"] for t in rec["tracks"]) == audio  # only what remains
        [job] = await wait_deletions_done(svc.client, 1)
        assert (job["scope"], job["reason"], sorted(job["keys"])) == ("video", "store_video_off", video)
        assert await s3.keys() == audio  # listed: the video files are gone, the audio stays
        [delivery] = await callback_receiver.wait_for(1)
        data = delivery.payload["data"]
        assert delivery.payload["type"] == "recording.raw_tracks_ready"
        assert sorted(data["track_keys"]) == audio
        assert sorted(t["s3_key"] for t in data["tracks"]) == audio
        assert {t["type"] for t in data["tracks"]} == {"audio"}
        # The recording itself stays: nothing is announced as deleted.
        assert [d.payload["type"] for d in callback_receiver.accepted] == ["recording.raw_tracks_ready"]


async def test_a_cloud_recording_reported_anyway_is_deleted_and_never_available(
    db_url: str, s3: S3Bucket, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    async with service_factory(privacy_env(db_url, s3, callback_receiver)) as svc:
        body = {
            "room_name": WEBHOOK_ROOM,
            "recording_type": "cloud",
            "start_date": T0.isoformat(),
            "end_date": None,
            "store_video": False,
        }
        assert (await svc.client.put("/v1/meetings/m-1", json=body, headers=AUTH)).status_code == 201
        cloud = await cloud_ready(svc.client, s3)  # e.g. started from a browser
        m = await recordings_of(svc.client, "m-1")
        assert (m["store_video"], m["cloud_recording_available"]) == (False, False)
        assert [r["status"] for r in m["recordings"]] == ["deleted"]
        assert (
            await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        ).status_code == 404
        [job] = await wait_deletions_done(svc.client, 1)
        assert (job["scope"], job["reason"]) == ("recording", "store_video_off")
        assert await s3.keys() == []
        [announced] = await wait_deleted_callbacks(callback_receiver, 1)
        assert announced["data"] == {
            "meeting_id": "m-1",
            "recording_id": cloud["recording_id"],
            "type": "cloud",
            "reason": "store_video_off",
        }
        assert [d.payload["type"] for d in callback_receiver.accepted] == ["recording.deleted"]


async def test_store_video_defaults_to_true_and_can_be_changed(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(privacy_env(db_url, s3, RECORDER_BACKGROUND="false")) as svc:
        path = f"/v1/meetings/{MEETING_ID}"
        assert (await svc.client.put(path, json=meeting_body(), headers=AUTH)).json()["store_video"] is True
        assert (await svc.client.put(path, json=meeting_body(store_video=False), headers=AUTH)).json()[
            "store_video"
        ] is False
        assert (await recordings_of(svc.client, MEETING_ID))["store_video"] is False
        bad = await svc.client.put(path, json=meeting_body(store_video="no"), headers=AUTH)
        assert bad.status_code == 400


async def test_tokened_playback_then_deletion_everywhere(
    db_url: str,
    s3: S3Bucket,
    callback_receiver: CallbackReceiver,
    daily_sim_factory: DailySimFactory,
    service_factory: ServiceFactory,
) -> None:
    sim, env = await _simulated(db_url, s3, callback_receiver, daily_sim_factory)
    async with service_factory(env) as svc:
        await sim.create_webhook(f"{svc.url}/v1/daily/webhook", WEBHOOK_SECRET)
        await svc.client.put(f"/v1/meetings/{MEETING_ID}", json=meeting_body(), headers=AUTH)
        await asyncio.gather(sim.join(ROOM, "alice"), sim.join(ROOM, "bob"))
        for kind in ("raw-tracks", "cloud"):
            r = await svc.client.post(f"/v1/meetings/{MEETING_ID}/recordings/start", json={"type": kind})
            assert r.json()["status"] == "started"
        await _wait(
            svc, lambda m: len(m["recordings"]) == 2 and all(r["daily_recording_id"] for r in m["recordings"])
        )
        await asyncio.sleep(1.1)
        await sim.end_meeting(ROOM)
        m = await _wait(svc, lambda m: all(r["status"] == "ready" for r in m["recordings"]))
        path = f"/v1/meetings/{MEETING_ID}/cloud-recording"
        assert (await svc.client.get(path)).status_code == 401
        r = await svc.client.get(path, params=playback(MEETING_ID))
        assert r.status_code == 307
        async with httpx.AsyncClient() as browser:
            assert (await browser.get(r.headers["location"])).status_code == 200
        assert len(await s3.keys()) == 1 + 4  # the cloud MP4, two participants' audio and video

        r = await svc.client.delete(f"/v1/meetings/{MEETING_ID}/recordings", headers=AUTH)
        assert sorted(r.json()["deleted"]) == sorted(rec["id"] for rec in m["recordings"])
        assert (await svc.client.get(path, params=playback(MEETING_ID))).status_code == 404
        jobs = await wait_deletions_done(svc.client, 2)
        assert await s3.keys() == []
        await wait_deleted_callbacks(callback_receiver, 2)
        # Daily's own record of each recording is deleted too (best effort, after the bucket).
        deadline = time.monotonic() + 10
        while {j["daily_outcome"] for j in await deletions(svc.client)} != {"deleted"}:
            assert time.monotonic() < deadline, jobs
            await asyncio.sleep(0.1)
        daily_ids = {rec["daily_recording_id"] for rec in m["recordings"]}
        assert not daily_ids & {rec["id"] for rec in await sim.recordings()}
