"""The simulator ends a meeting and delivers its real, signed webhooks to the service."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from recorder_service.tools.simulator import SimulatorConfig
from tests.integration.test_playback import s3_env
from tests.integration.test_start import MEETING_ID, ROOM, meeting_body
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import AUTH, WEBHOOK_SECRET, RunningService, ServiceFactory, playback
from tests.plugins.simulator import DailySimFactory


async def wait_for(svc: RunningService, predicate: Any, timeout_s: float = 10) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        m: dict[str, Any] = (
            await svc.client.get(f"/v1/meetings/{MEETING_ID}/recordings", headers=AUTH)
        ).json()
        if predicate(m):
            return m
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached: {m}")
        await asyncio.sleep(0.1)


async def test_meeting_lifecycle_through_real_daily_webhooks(
    db_url: str, s3: S3Bucket, daily_sim_factory: DailySimFactory, service_factory: ServiceFactory
) -> None:
    sim = await daily_sim_factory(
        SimulatorConfig(
            api_key="sim-key", s3_endpoint_url=s3.endpoint_url, s3_bucket=s3.bucket, s3_region=s3.region
        )
    )
    env = s3_env(db_url, s3, RECORDER_DAILY_API_URL=sim.base_url, RECORDER_CLOUD_START="server")
    async with service_factory(env) as svc:
        await sim.create_webhook(f"{svc.url}/v1/daily/webhook", WEBHOOK_SECRET)
        assert (
            await svc.client.put(f"/v1/meetings/{MEETING_ID}", json=meeting_body(), headers=AUTH)
        ).status_code == 201
        await asyncio.gather(sim.join(ROOM, "alice"), sim.join(ROOM, "bob"))
        for kind in ("raw-tracks", "cloud"):
            answers = await asyncio.gather(
                *(
                    svc.client.post(f"/v1/meetings/{MEETING_ID}/recordings/start", json={"type": kind})
                    for _ in range(2)
                )
            )
            assert sorted(a.json()["status"] for a in answers) == ["already_active", "started"]
        await wait_for(svc, lambda m: all(r["daily_recording_id"] for r in m["recordings"]))
        await asyncio.sleep(1.1)  # a recording lasts at least a second
        await sim.end_meeting(ROOM)
        m = await wait_for(
            svc, lambda m: all(r["status"] == "ready" for r in m["recordings"]) and len(m["recordings"]) == 2
        )
        by_type = {r["type"]: r for r in m["recordings"]}
        assert len([t for t in by_type["raw-tracks"]["tracks"] if t["type"] == "audio"]) == 2
        assert m["cloud_recording_available"] is True
        assert m["cloud_recording_duration"] == by_type["cloud"]["duration"] >= 1
        callbacks = (await svc.client.get("/v1/callbacks", headers=AUTH)).json()["callbacks"]
        assert sorted(c["event_type"] for c in callbacks) == [
            "recording.cloud_ready",
            "recording.raw_tracks_ready",
        ]
        # Playback serves exactly what "Daily" wrote to the bucket.
        r = await svc.client.get(f"/v1/meetings/{MEETING_ID}/cloud-recording", params=playback(MEETING_ID))
        async with httpx.AsyncClient() as plain:
            media = await plain.get(r.headers["location"])
        assert media.content == await s3.get(by_type["cloud"]["s3_key"])
        # Someone rejoins later: a new recording session starts at Daily.
        await sim.join(ROOM, "carol")
        r = await svc.client.post(f"/v1/meetings/{MEETING_ID}/recordings/start", json={"type": "raw-tracks"})
        assert r.json()["status"] == "started"
        assert [s["count"] for s in (await sim.calls())["starts"] if s["type"] == "raw-tracks"] == [2]
        for _ in range(50):  # the new session's recording.started may still be applying
            events = (await svc.client.get("/v1/daily/events", headers=AUTH)).json()["events"]
            if all(e["state"] != "pending" for e in events):
                break
            await asyncio.sleep(0.1)
        assert {e["state"] for e in events} <= {"applied", "ignored"}
