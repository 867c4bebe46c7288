"""Reconciliation with Daily's recording list: missed webhooks are found anyway (contract §8)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from recorder_service.core.models import Recording
from recorder_service.core.statuses import RecordingStatus
from recorder_service.errors import DailyError
from recorder_service.resources import Resources
from recorder_service.workers.reconciler import reconcile_once
from tests.integration.test_start import MEETING_ID, ROOM, meeting_body
from tests.plugins.service import AUTH, WEBHOOK_SECRET, RunningService, ServiceFactory, service_env
from tests.plugins.simulator import DailySim


def resources(svc: RunningService) -> Resources:
    res: Resources = svc.app_state.resources  # type: ignore[attr-defined]
    return res


async def recordings(svc: RunningService, meeting_id: str = MEETING_ID) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (
        await svc.client.get(f"/v1/meetings/{meeting_id}/recordings", headers=AUTH)
    ).json()["recordings"]
    return result


async def callbacks(svc: RunningService) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await svc.client.get("/v1/callbacks", headers=AUTH)).json()["callbacks"]
    return result


def env_for(db_url: str, sim: DailySim, **over: str) -> dict[str, str]:
    return service_env(db_url, sim.base_url, RECORDER_S3_BUCKET="bucket", **over)


async def record_a_meeting(
    svc: RunningService, sim: DailySim, meeting_id: str = MEETING_ID, room: str = ROOM
) -> None:
    r = await svc.client.put(f"/v1/meetings/{meeting_id}", json=meeting_body(room_name=room), headers=AUTH)
    assert r.status_code in (200, 201)
    await sim.join(room)
    r = await svc.client.post(f"/v1/meetings/{meeting_id}/recordings/start", json={"type": "raw-tracks"})
    assert r.json()["status"] == "started"
    await sim.end_meeting(room)


async def test_missed_webhook_is_found_by_the_reconciler(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(env_for(db_url, daily_sim)) as svc:
        # No webhook is configured at Daily: every event is lost.
        await record_a_meeting(svc, daily_sim)
        [rec] = await recordings(svc)
        assert rec["status"] == "recording"
        await reconcile_once(resources(svc))
        [rec] = await recordings(svc)
        assert rec["status"] == "ready"
        assert rec["type"] == "raw-tracks"
        assert rec["daily_recording_id"] is not None
        assert len([t for t in rec["tracks"] if t["type"] == "audio"]) == 1
        [cb] = await callbacks(svc)
        assert cb["event_type"] == "recording.raw_tracks_ready"
        # A second pass has no further effect.
        await reconcile_once(resources(svc))
        assert len(await recordings(svc)) == 1
        assert len(await callbacks(svc)) == 1


async def test_webhook_and_reconciler_reporting_one_recording_make_one_callback(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(env_for(db_url, daily_sim)) as svc:
        await daily_sim.create_webhook(f"{svc.url}/v1/daily/webhook", WEBHOOK_SECRET)
        await record_a_meeting(svc, daily_sim)
        for _ in range(100):
            if (await recordings(svc))[0]["status"] == "ready":
                break
            import asyncio

            await asyncio.sleep(0.05)
        await reconcile_once(resources(svc))
        assert [r["status"] for r in await recordings(svc)] == ["ready"]
        assert len(await callbacks(svc)) == 1


async def test_pages_from_a_stored_cursor_and_resumes_after_daily_fails(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = env_for(
        db_url,
        daily_sim,
        RECORDER_RECONCILE_PAGE_SIZE="2",
        RECORDER_DAILY_MAX_ATTEMPTS="1",
        RECORDER_RECONCILE_PAGE_PAUSE_SECONDS="0",
    )
    async with service_factory(env) as svc:
        rooms = [f"room-{i}" for i in range(5)]
        for i, room in enumerate(rooms):
            await record_a_meeting(svc, daily_sim, meeting_id=f"m-{i}", room=room)
        res = resources(svc)
        # Page 1 (2 recordings) succeeds, page 2 fails: the cursor stays after page 1.
        await daily_sim.fault("list_recordings", status=500, count=1, after=1)
        with pytest.raises(DailyError):
            await reconcile_once(res)
        ready_after_failure = sum(
            [r["status"] == "ready" for i in range(5) for r in await recordings(svc, f"m-{i}")]
        )
        assert ready_after_failure == 2
        async with res.db.transaction() as uow:
            assert await uow.state.get("reconciler.starting_after")
        await reconcile_once(res)
        statuses = [r["status"] for i in range(5) for r in await recordings(svc, f"m-{i}")]
        assert statuses == ["ready"] * 5
        assert len(await callbacks(svc)) == 5
        list_calls = (await daily_sim.calls())["operations"]["list_recordings"]
        assert list_calls["500"] == 1


async def test_stale_start_claims_expire(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(
        env_for(db_url, daily_sim, RECORDER_STARTING_CLAIM_TIMEOUT_SECONDS="1")
    ) as svc:
        r = await svc.client.put(f"/v1/meetings/{MEETING_ID}", json=meeting_body(), headers=AUTH)
        assert r.status_code == 201
        res = resources(svc)
        async with res.db.transaction() as uow:
            await uow.recordings.insert(
                Recording(
                    id="claim-1", meeting_id=MEETING_ID, type="raw-tracks", status=RecordingStatus.STARTING
                ),
                created_at=res.now() - timedelta(seconds=30),
            )
        await reconcile_once(res)
        assert await recordings(svc) == []


async def test_recordings_stuck_far_past_their_start_are_resolved_with_daily(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    from recorder_service.services.reconciliation import clean_up_stuck
    from recorder_service.workers.reconciler import reconcile_policy

    env = env_for(db_url, daily_sim, RECORDER_STUCK_RECORDING_HOURS="0.0001")
    async with service_factory(env) as svc:
        await record_a_meeting(svc, daily_sim)  # no webhooks: the row stays "recording"
        finished = await daily_sim.recordings()
        res = resources(svc)
        [ours] = await recordings(svc)
        async with res.db.transaction() as uow:  # as a recording.started webhook would have named it
            await uow.recordings.set_fields(
                ours["id"], daily_recording_id=finished[0]["id"], started_at=res.now() - timedelta(hours=1)
            )
        await svc.client.put("/v1/meetings/other", json=meeting_body(room_name="other-room"), headers=AUTH)
        await daily_sim.join("other-room")
        canceled = await daily_sim.client_start("other-room", "raw-tracks", instance_id=str(uuid.uuid4()))
        await daily_sim.recording_error(canceled, "worker crashed")
        async with res.db.transaction() as uow:
            await uow.recordings.insert(
                Recording(
                    id="stuck-2",
                    meeting_id="other",
                    type="raw-tracks",
                    status=RecordingStatus.RECORDING,
                    daily_recording_id=canceled,
                    started_at=res.now() - timedelta(hours=1),
                )
            )
        expired, resolved = await clean_up_stuck(res.ingest, res.daily, reconcile_policy(res))
        assert (expired, resolved) == (0, 2)
        assert [r["status"] for r in await recordings(svc)] == ["ready"]
        [failed] = await recordings(svc, "other")
        assert (failed["status"], failed["error"]) == ("failed", "Daily canceled the recording")
