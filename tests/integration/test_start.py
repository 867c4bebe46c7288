"""Join-time start (contract §4) against the Daily simulator over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from recorder_service.tools.simulator import SimulatorConfig
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.plugins.simulator import DailySim, DailySimFactory

MEETING_ID = "5b0b5d1c-2a33-4b7e-9d1e-0f0c7a1b2c3d"
ROOM = "standup-20261124100000"
RAW_INSTANCE = str(uuid.uuid5(uuid.UUID("a1b2c3d4-e5f6-7890-abcd-ef1234567890"), MEETING_ID))


def meeting_body(**over: Any) -> dict[str, Any]:
    body = {
        "room_name": ROOM,
        "recording_type": "cloud",
        "start_date": "2026-01-01T10:00:00Z",
        "end_date": "2099-01-01T10:00:00Z",
    }
    return body | over


async def register(svc: RunningService, meeting_id: str = MEETING_ID, **over: Any) -> None:
    r = await svc.client.put(f"/v1/meetings/{meeting_id}", json=meeting_body(**over), headers=AUTH)
    assert r.status_code in (200, 201), r.text


async def start(
    svc: RunningService, type_: str = "raw-tracks", meeting_id: str = MEETING_ID, **extra: Any
) -> Any:
    return await svc.client.post(f"/v1/meetings/{meeting_id}/recordings/start", json={"type": type_} | extra)


async def daily_starts(sim: DailySim) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await sim.calls())["starts"]
    return result


async def recordings(svc: RunningService, meeting_id: str = MEETING_ID) -> list[dict[str, Any]]:
    r = await svc.client.get(f"/v1/meetings/{meeting_id}/recordings", headers=AUTH)
    assert r.status_code == 200
    result: list[dict[str, Any]] = r.json()["recordings"]
    return result


async def test_first_start_starts_then_repeats_are_already_active(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        r = await start(svc, instanceId=str(uuid.uuid4()))  # advisory: ignored
        assert r.status_code == 200, r.text
        assert r.json() == {
            "status": "started",
            "type": "raw-tracks",
            "instanceId": RAW_INSTANCE,
            "meeting_id": MEETING_ID,
        }
        r = await start(svc)
        assert r.json()["status"] == "already_active"
        starts = await daily_starts(daily_sim)
        assert starts == [{"room_name": ROOM, "type": "raw-tracks", "instance_id": RAW_INSTANCE, "count": 1}]
        [rec] = await recordings(svc)
        assert rec["status"] == "recording"
        assert rec["instance_id"] == RAW_INSTANCE
        assert rec["type"] == "raw-tracks"


async def test_cloud_start_in_server_mode_uses_the_meeting_uuid(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, daily_sim.base_url, RECORDER_CLOUD_START="server")
    async with service_factory(env) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        cloud = await start(svc, "cloud")
        raw = await start(svc, "raw-tracks")
        assert cloud.json()["status"] == raw.json()["status"] == "started"
        assert cloud.json()["instanceId"] == MEETING_ID
        assert cloud.json()["instanceId"] != raw.json()["instanceId"]
        kinds = {(s["type"], s["instance_id"]) for s in await daily_starts(daily_sim)}
        assert kinds == {("cloud", MEETING_ID), ("raw-tracks", RAW_INSTANCE)}


async def test_cloud_start_is_refused_in_client_mode(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, daily_sim.base_url, RECORDER_CLOUD_START="client")
    async with service_factory(env) as svc:
        await register(svc)
        r = await start(svc, "cloud")
        assert r.status_code == 400
        assert "client" in r.json()["detail"]
        assert await daily_starts(daily_sim) == []


async def test_not_hosting_is_retried_until_the_call_exists(
    db_url: str, daily_sim_factory: DailySimFactory, service_factory: ServiceFactory
) -> None:
    sim = await daily_sim_factory(SimulatorConfig(api_key="sim-key", hosting_delay_s=0.5))
    env = service_env(db_url, sim.base_url, RECORDER_START_NOT_HOSTING_BUDGET_SECONDS="3")
    async with service_factory(env) as svc:
        await register(svc)
        await sim.join(ROOM)  # Daily registers the call 0.5 s later
        r = await start(svc)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "started"
        ops = (await sim.calls())["operations"]["start_recording"]
        assert ops.get("404", 0) >= 1
        assert ops["200"] == 1


async def test_not_hosting_after_the_budget_is_409_with_retry_after_and_releases_the_claim(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        r = await start(svc)  # nobody joined: Daily never hosts
        assert r.status_code == 409
        assert int(r.headers["Retry-After"]) >= 1
        assert "hosting" in r.json()["detail"]
        assert await recordings(svc) == []
        await daily_sim.join(ROOM)
        # Daily's "not hosting" is shared with every caller for RECORDER_START_NOT_HOSTING_DELAY_SECONDS
        # (0.2 s here) instead of being asked again; the browser waits Retry-After anyway.
        await asyncio.sleep(0.3)
        r = await start(svc)
        assert r.json()["status"] == "started"


async def test_daily_active_stream_means_already_active(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, daily_sim.base_url, RECORDER_CLOUD_START="server")
    async with service_factory(env) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        # The browser already started cloud with the same deterministic instanceId.
        await daily_sim.client_start(ROOM, "cloud", instance_id=MEETING_ID)
        r = await start(svc, "cloud")
        assert r.status_code == 200
        assert r.json()["status"] == "already_active"
        [rec] = await recordings(svc)
        assert rec["status"] == "recording"


async def test_daily_5xx_is_retried_then_502_and_the_claim_is_released(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        await daily_sim.fault(
            "start_recording", status=500, count=3, error="server-error", info="recording workers exhausted"
        )
        r = await start(svc)
        assert r.status_code == 502
        assert "recording workers exhausted" in r.json()["detail"]
        assert (await daily_sim.calls())["operations"]["start_recording"] == {"500": 3}
        assert await recordings(svc) == []
        r = await start(svc)
        assert r.json()["status"] == "started"


async def test_daily_timeout_is_502_after_bounded_retries(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(
        db_url, daily_sim.base_url, RECORDER_DAILY_TIMEOUT_SECONDS="0.3", RECORDER_DAILY_MAX_ATTEMPTS="2"
    )
    async with service_factory(env) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        await daily_sim.fault("start_recording", status=0, count=2, latency_s=1.0)
        r = await start(svc)
        assert r.status_code == 502
        assert "timed out" in r.json()["detail"]
        assert await recordings(svc) == []


async def test_unexpected_daily_4xx_is_not_retried(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        await daily_sim.fault(
            "start_recording",
            status=403,
            count=1,
            error="forbidden-error",
            info="recording is not enabled for this domain",
        )
        r = await start(svc)
        assert r.status_code == 502
        assert "forbidden-error" in r.json()["detail"]
        assert (await daily_sim.calls())["operations"]["start_recording"] == {"403": 1}


@pytest.mark.parametrize(
    ("path_id", "body", "status"),
    [
        (MEETING_ID, "{not json", 400),
        (MEETING_ID, {"type": "video"}, 400),
        (MEETING_ID, {"type": "raw-tracks", "instanceId": "not-a-uuid"}, 400),
        (MEETING_ID, {"type": "raw-tracks", "extra": 1}, 400),
        (MEETING_ID, {}, 400),
        ("bad id!", {"type": "raw-tracks"}, 400),
        ("unknown-meeting", {"type": "raw-tracks"}, 404),
    ],
)
async def test_bad_start_requests_change_nothing(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory, path_id: str, body: Any, status: int
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        r = await svc.client.post(
            f"/v1/meetings/{path_id}/recordings/start", headers={"Content-Type": "application/json"}, **kwargs
        )
        assert r.status_code == status, r.text
        assert r.json()["status_code"] == status
        assert isinstance(r.json()["detail"], str)
        assert await daily_starts(daily_sim) == []
        assert await recordings(svc) == []


@pytest.mark.parametrize(
    "over", [{"recording_type": "none"}, {"recording_type": "local"}, {"end_date": "2026-01-01T11:00:00Z"}]
)
async def test_unrecordable_meetings_are_409(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory, over: dict[str, str]
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc, **over)
        await daily_sim.join(ROOM)
        r = await start(svc)
        assert r.status_code == 409
        assert await daily_starts(daily_sim) == []


async def test_oversize_start_body_is_413(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        r = await svc.client.post(
            f"/v1/meetings/{MEETING_ID}/recordings/start",
            content=b'{"type": "raw-tracks", "pad": "' + b"x" * (1 << 20) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413


async def test_concurrent_starts_in_one_process_reach_daily_once(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        await daily_sim.latency("start_recording", 0.1)
        answers = await asyncio.gather(*(start(svc) for _ in range(30)))
        assert {a.status_code for a in answers} == {200}
        statuses = [a.json()["status"] for a in answers]
        assert statuses.count("started") == 1
        assert statuses.count("already_active") == 29
        assert [s["count"] for s in await daily_starts(daily_sim)] == [1]


async def test_queued_callers_share_the_holders_not_hosting_answer(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        answers = await asyncio.gather(*(start(svc) for _ in range(10)))
        assert {a.status_code for a in answers} == {409}
        # Only the lock holder spent its retry budget at Daily; the queue did not repeat it.
        calls = (await daily_sim.calls())["operations"]["start_recording"]["404"]
        assert calls <= 8


async def test_redis_coordination_across_processes_sharing_redis(
    postgres_db_url: str,
    redis_url: str,
    redis_prefix: str,
    daily_sim: DailySim,
    service_factory: ServiceFactory,
) -> None:
    env = service_env(
        postgres_db_url, daily_sim.base_url, RECORDER_REDIS_URL=redis_url, RECORDER_REDIS_PREFIX=redis_prefix
    )
    async with service_factory(env) as a, service_factory(env) as b:
        await register(a)
        await daily_sim.join(ROOM)
        await daily_sim.latency("start_recording", 0.1)
        answers = await asyncio.gather(*(start(a if i % 2 else b) for i in range(20)))
        statuses = [x.json()["status"] for x in answers]
        assert statuses.count("started") == 1, statuses
        assert [s["count"] for s in await daily_starts(daily_sim)] == [1]


async def test_redis_down_while_configured_refuses_starts(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, daily_sim.base_url, RECORDER_REDIS_URL="redis://127.0.0.1:1/0")
    async with service_factory(env) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        r = await start(svc)
        assert r.status_code == 503
        assert await daily_starts(daily_sim) == []


async def test_public_endpoints_are_rate_limited_per_client(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, daily_sim.base_url, RECORDER_RATE_LIMIT_PER_MINUTE="3")
    async with service_factory(env) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        codes = [(await start(svc)).status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200]
        r = await start(svc)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        # Internal endpoints are not limited.
        assert (
            await svc.client.get(f"/v1/meetings/{MEETING_ID}/recordings", headers=AUTH)
        ).status_code == 200


async def test_cors_allows_only_configured_origins(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(db_url, daily_sim.base_url, RECORDER_CORS_ORIGINS="https://app.example")
    async with service_factory(env) as svc:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        ok = await svc.client.options(
            f"/v1/meetings/{MEETING_ID}/recordings/start",
            headers=preflight | {"Origin": "https://app.example"},
        )
        assert ok.headers.get("access-control-allow-origin") == "https://app.example"
        bad = await svc.client.options(
            f"/v1/meetings/{MEETING_ID}/recordings/start",
            headers=preflight | {"Origin": "https://evil.example"},
        )
        assert bad.headers.get("access-control-allow-origin") is None


async def test_ready_event_during_an_inflight_start_does_not_take_over_the_claim(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload

    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        await daily_sim.latency("start_recording", 1.0)
        inflight = asyncio.create_task(start(svc))
        await asyncio.sleep(0.3)  # the claim is "starting" now
        start_ts = 1767261600 + 300  # 2026-01-01T10:05Z, inside the meeting's window
        payload = ready_payload(
            room=ROOM, start_ts=start_ts, type_="raw-tracks", tracks=raw_tracks(ROOM, start_ts)
        )
        assert (
            await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
        ).status_code == 200
        assert (await inflight).json()["status"] == "started"
        by_status = {r["status"]: r for r in await recordings(svc)}
        assert set(by_status) == {"recording", "ready"}
        assert by_status["ready"]["daily_recording_id"] == payload["recording_id"]
        assert by_status["recording"]["daily_recording_id"] is None


async def test_max_duration_covers_the_meetings_remaining_time(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    from datetime import UTC, datetime, timedelta

    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        long_end = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
        await register(svc, end_date=long_end)
        await register(svc, "short-meeting", end_date=(datetime.now(UTC) + timedelta(minutes=30)).isoformat())
        await daily_sim.join(ROOM)
        assert (await start(svc)).json()["status"] == "started"
        assert (await start(svc, meeting_id="short-meeting")).status_code == 200  # same room, other meeting
        by_instance = {
            m["instance_id"]: m["max_duration"] for m in (await daily_sim.calls())["max_durations"]
        }
        assert 5 * 3600 - 60 <= by_instance[RAW_INSTANCE] <= 5 * 3600
        # Never below Daily's 3-hour default, so a short meeting that runs over is not cut off.
        short_instance = str(uuid.uuid5(uuid.UUID("a1b2c3d4-e5f6-7890-abcd-ef1234567890"), "short-meeting"))
        assert by_instance[short_instance] == 3 * 3600


async def test_daily_429_is_retried(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, daily_sim.base_url)) as svc:
        await register(svc)
        await daily_sim.join(ROOM)
        await daily_sim.fault(
            "start_recording", status=429, count=1, error="rate-limit-error", info="slow down"
        )
        r = await start(svc)
        assert r.json()["status"] == "started"
        assert (await daily_sim.calls())["operations"]["start_recording"] == {"429": 1, "200": 1}
