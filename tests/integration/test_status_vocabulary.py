"""Every status a recording passes through, as GET /v1/meetings/{id}/recordings shows it: only
the contract's statuses, whatever the internal state (contract §5)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from recorder_service.core.models import instance_id_for
from recorder_service.core.statuses import RecordingStatus
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.support.meetings import meeting_body, register_meeting
from tests.support.recordings import own_session
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload

CONTRACT_STATUSES = {"starting", "recording", "ready", "failed", "deleted"}


@pytest.fixture
async def svc(db_url: str, service_factory: ServiceFactory) -> Any:
    async with service_factory(service_env(db_url, RECORDER_S3_BUCKET="recordings")) as running:
        yield running


async def shown(svc: RunningService, meeting_id: str) -> list[str]:
    r = await svc.client.get(f"/v1/meetings/{meeting_id}/recordings", headers=AUTH)
    assert r.status_code == 200, r.text
    statuses = [rec["status"] for rec in r.json()["recordings"]]
    assert set(statuses) <= CONTRACT_STATUSES, statuses
    return statuses


async def send(svc: RunningService, event_type: str, payload: dict[str, Any]) -> None:
    r = await post_webhook(svc.client, envelope(event_type, payload))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "applied", r.json()


async def test_a_recording_walks_every_status_and_shows_only_contract_ones(svc: RunningService) -> None:
    meeting_id = str(uuid.uuid4())
    room = f"room-{uuid.uuid4().hex[:8]}"
    await register_meeting(svc.client, meeting_id, meeting_body(room, started_ago=timedelta(minutes=5)))
    seen: list[str] = []

    # Claims our starts have not confirmed yet: "starting".
    async with svc.app_state.resources.db.transaction() as uow:  # type: ignore[attr-defined]
        for rec_type in ("raw-tracks", "cloud"):
            await uow.recordings.insert(
                own_session(meeting_id, rec_type, RecordingStatus.STARTING, room_name=room)
            )
    seen += await shown(svc, meeting_id)
    assert seen == ["starting", "starting"]

    # Daily says the raw-tracks recording started, then everyone left: internally "finishing",
    # which the API shows as "recording" (never "finishing").
    daily_id = str(uuid.uuid4())
    start_ts = int(time.time()) - 60
    await send(
        svc,
        "recording.started",
        {
            "recording_id": daily_id,
            "action": "start-raw-tracks-recording",
            "instance_id": instance_id_for(meeting_id, "raw-tracks"),
            "start_ts": start_ts,
        },
    )
    seen += await shown(svc, meeting_id)
    ended = {"meeting_id": str(uuid.uuid4()), "room": room, "start_ts": start_ts - 5, "end_ts": time.time()}
    await send(svc, "meeting.ended", ended)
    after_end = await shown(svc, meeting_id)
    assert sorted(after_end) == ["recording", "starting"]
    seen += after_end

    # Ready, with its tracks.
    ready = ready_payload(
        room=room,
        start_ts=start_ts,
        recording_id=daily_id,
        type_="raw-tracks",
        tracks=raw_tracks(room, start_ts),
    )
    await send(svc, "recording.ready-to-download", ready)
    after_ready = await shown(svc, meeting_id)
    assert sorted(after_ready) == ["ready", "starting"]
    seen += after_ready

    # The cloud claim fails at Daily.
    await send(
        svc,
        "recording.error",
        {
            "action": "cloud-recording-error",
            "error_msg": "unable to write to bucket",
            "instance_id": instance_id_for(meeting_id, "cloud"),
            "room_name": room,
            "timestamp": int(time.time()),
        },
    )
    after_error = await shown(svc, meeting_id)
    assert sorted(after_error) == ["failed", "ready"]
    seen += after_error

    assert {"starting", "recording", "ready", "failed"} <= set(seen)
