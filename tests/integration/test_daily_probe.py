"""The Daily probe against the simulator over real HTTP: outcomes, findings and cleanup."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from recorder_service.adapters.daily.client import DailyClient
from recorder_service.tools.daily_probe import (
    STEP_CLEANUP,
    STEP_CONCURRENT,
    STEP_DISTINCT_IDS,
    STEP_REPEAT,
    STEP_SAME_ID,
    ProbeReport,
    run_probe,
)
from tests.plugins.simulator import DailySim

RAW_TRACKS_NAMESPACE = uuid.UUID("a1b2c3d4-e5f6-7890-abcd-ef1234567890")


@pytest.fixture
async def daily(daily_sim: DailySim) -> AsyncIterator[DailyClient]:
    async with DailyClient.build_http(daily_sim.base_url, "sim-key", 5.0) as http:
        yield DailyClient(http, max_attempts=1)


async def probe(daily: DailyClient, room: str, **kw: Any) -> tuple[ProbeReport, str]:
    out = io.StringIO()
    report = await run_probe(daily, room, out=out, start_interval_s=0, **kw)
    return report, out.getvalue()


def outcomes(report: ProbeReport, step: str) -> list[str]:
    return [c.outcome for c in report.starts(step)]


async def test_probe_in_live_call_reports_instance_id_rules(daily: DailyClient, daily_sim: DailySim) -> None:
    await daily_sim.join("probe-room")

    report, text = await probe(daily, "probe-room", concurrency=5, repeats=3)

    assert report.completed and report.hosting
    assert outcomes(report, STEP_SAME_ID) == ["started", "error"]
    rejected = report.starts(STEP_SAME_ID)[1]
    assert rejected.status_code == 400 and rejected.error_type == "invalid-request-error"
    assert "has an active stream" not in (rejected.info or "")
    assert outcomes(report, STEP_DISTINCT_IDS) == ["started", "started"]
    cloud, raw = report.starts(STEP_DISTINCT_IDS)
    assert raw.instance_id == str(uuid.uuid5(RAW_TRACKS_NAMESPACE, cloud.instance_id))
    assert outcomes(report, STEP_REPEAT) == ["started", "active-stream", "active-stream"]
    racing = outcomes(report, STEP_CONCURRENT)
    assert sorted(racing) == ["active-stream"] * 4 + ["started"]
    assert len({c.instance_id for c in report.starts(STEP_CONCURRENT)}) == 1

    assert "same instanceId for cloud and raw-tracks: rejected" in text
    assert "use different deterministic instanceIds" in text
    assert "safe to treat as already active" in text
    assert "exactly one started, 4 answered 'has an active stream'" in text
    assert "Consistent with the service's design" in text
    assert "NOTE" not in text  # the room was hosting all along
    for call in report.calls:
        assert call.short_id in text and call.outcome in text


async def test_probe_stops_every_instance_it_started(daily: DailyClient, daily_sim: DailySim) -> None:
    await daily_sim.join("cleanup-room")

    report, _ = await probe(daily, "cleanup-room", concurrency=3, repeats=2)

    recordings = await daily_sim.recordings()
    started = [c for c in report.calls if c.action == "start" and c.outcome == "started"]
    assert len(recordings) == len(started) == 5
    assert {r["status"] for r in recordings} == {"finished"}
    stopped = {(c.type, c.instance_id) for c in report.calls if c.outcome == "stopped"}
    assert stopped == {(c.type, c.instance_id) for c in started}
    assert {(r["type"], r["instance_id"]) for r in recordings} == stopped
    calls = await daily_sim.calls()
    assert calls["operations"]["stop_recording"] == {"200": 5}
    assert not report.failed_stops
    # Each step stops its own sessions, so nothing is left for the final cleanup.
    assert not [c for c in report.calls if c.step == STEP_CLEANUP]


async def test_probe_without_participant_reports_not_hosting_and_finishes(
    daily: DailyClient, daily_sim: DailySim
) -> None:
    report, text = await probe(daily, "nobody-here", concurrency=2, repeats=2)

    assert report.completed and not report.hosting
    starts = [c for c in report.calls if c.action == "start"]
    assert len(starts) == 2 + 2 + 2 + 2
    assert {c.outcome for c in starts} == {"not-hosting"}
    assert all(c.status_code == 404 for c in starts)
    assert text.count("NOTE: Daily says room 'nobody-here' is not hosting a call") == 1
    assert "not-hosting" in text
    assert "nothing about instanceIds was learned" in text
    assert not report.failed_stops and not report.auth_failed
    assert [c for c in report.calls if c.action == "stop"] == []
    assert await daily_sim.recordings() == []
    assert "stop_recording" not in (await daily_sim.calls())["operations"]


async def test_interrupted_probe_still_stops_what_it_started(daily: DailyClient, daily_sim: DailySim) -> None:
    await daily_sim.join("ctrl-c-room")
    await daily_sim.latency("start_recording", 0.3)
    out = io.StringIO()
    task = asyncio.create_task(run_probe(daily, "ctrl-c-room", out=out, start_interval_s=0))
    try:
        async with asyncio.timeout(5):
            while not await daily_sim.recordings():  # the first (cloud) start went through
                await asyncio.sleep(0.02)
    finally:
        task.cancel()  # what asyncio.run does on Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await task
    await daily_sim.latency("start_recording", 0)

    recordings = await daily_sim.recordings()
    assert [(r["type"], r["status"]) for r in recordings] == [("cloud", "finished")]
    text = out.getvalue()
    assert "Probe interrupted" in text
    assert STEP_CLEANUP in text and "stopped" in text
