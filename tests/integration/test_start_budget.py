"""Daily's start budget (contract §4): the deployment, all replicas together, never sends Daily
more than its limit of start calls in any window; first calls go before retries; a caller who
cannot get a call within its wait gets 429 with Retry-After; "not hosting" is shared.

Counted where Daily would count: at the simulator, which logs the arrival of every start call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recorder_service.tools.simulator import SimulatorConfig
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.plugins.simulator import DailySim, DailySimFactory


def meeting(room: str) -> dict[str, Any]:
    return {
        "room_name": room,
        "recording_type": "cloud",
        "start_date": "2026-01-01T10:00:00Z",
        "end_date": "2099-01-01T10:00:00Z",
    }


async def register(svc: RunningService, meeting_id: str, room: str) -> None:
    r = await svc.client.put(f"/v1/meetings/{meeting_id}", json=meeting(room), headers=AUTH)
    assert r.status_code in (200, 201), r.text


async def start(svc: RunningService, meeting_id: str) -> Any:
    return await svc.client.post(f"/v1/meetings/{meeting_id}/recordings/start", json={"type": "raw-tracks"})


async def wait_for_calls(sim: DailySim, count: int) -> list[dict[str, Any]]:
    for _ in range(500):
        calls: list[dict[str, Any]] = (await sim.call_times())["calls"]
        if len(calls) >= count:
            return calls
        await asyncio.sleep(0.01)
    raise AssertionError(f"Daily did not receive {count} start calls")


def shared_env(db_url: str, sim: DailySim, redis_url: str, redis_prefix: str, **over: str) -> dict[str, str]:
    return service_env(
        db_url, sim.base_url, RECORDER_REDIS_URL=redis_url, RECORDER_REDIS_PREFIX=redis_prefix, **over
    )


async def test_a_burst_across_two_instances_stays_within_the_budget_at_daily(
    postgres_db_url: str,
    redis_url: str,
    redis_prefix: str,
    daily_sim_factory: DailySimFactory,
    service_factory: ServiceFactory,
) -> None:
    # Daily's own limit, scaled down: 3 calls in any second, else 429.
    sim = await daily_sim_factory(SimulatorConfig(api_key="sim-key", start_rate_limit=(3, 1.0)))
    env = shared_env(
        postgres_db_url,
        sim,
        redis_url,
        redis_prefix,
        RECORDER_DAILY_START_BUDGET_CALLS="3",
        RECORDER_DAILY_START_BUDGET_WINDOW_SECONDS="1",
    )
    meetings = [(f"burst-{i}", f"burst-room-{i}") for i in range(12)]
    async with service_factory(env) as a, service_factory(env) as b:
        for meeting_id, room in meetings:
            await register(a, meeting_id, room)
            await sim.join(room)
        answers = await asyncio.gather(
            *(start((a, b)[i % 2], mid) for i, (mid, _room) in enumerate(meetings))
        )
    assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers if r.status_code != 200]
    assert {r.json()["status"] for r in answers} == {"started"}
    seen = await sim.call_times(window_s=1.0)
    assert len(seen["calls"]) == 12
    assert seen["max_in_window"] <= 3
    assert (await sim.calls())["operations"]["start_recording"] == {"200": 12}  # Daily never said 429


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
async def test_first_calls_of_other_meetings_go_before_a_retry(
    postgres_db_url: str,
    redis_url: str,
    redis_prefix: str,
    daily_sim: DailySim,
    service_factory: ServiceFactory,
    shared: bool,
) -> None:
    # One call every 2 s: the first calls of "a" and "b" are surely waiting when the retry of
    # "empty" could take the second one.
    over = {
        "RECORDER_DAILY_START_BUDGET_CALLS": "1",
        "RECORDER_DAILY_START_BUDGET_WINDOW_SECONDS": "2",
        "RECORDER_START_NOT_HOSTING_BUDGET_SECONDS": "8",
    }
    env = (
        shared_env(postgres_db_url, daily_sim, redis_url, redis_prefix, **over)
        if shared
        else service_env(postgres_db_url, daily_sim.base_url, **over)
    )
    async with service_factory(env) as svc:
        await register(svc, "empty", "empty-room")  # nobody joins: Daily answers "not hosting"
        for name in ("a", "b"):
            await register(svc, name, f"{name}-room")
            await daily_sim.join(f"{name}-room")
        retrying = asyncio.create_task(start(svc, "empty"))
        await wait_for_calls(daily_sim, 1)  # its first call is spent; its retry waits for the next
        firsts = await asyncio.gather(start(svc, "a"), start(svc, "b"))
        assert [r.json()["status"] for r in firsts] == ["started", "started"]
        await wait_for_calls(daily_sim, 4)
        retrying.cancel()
    rooms = [c["room"] for c in (await daily_sim.call_times())["calls"]]
    assert rooms[:4] == ["empty-room", "a-room", "b-room", "empty-room"] or rooms[:4] == [
        "empty-room",
        "b-room",
        "a-room",
        "empty-room",
    ], rooms


async def test_a_start_that_cannot_get_a_call_in_its_wait_is_429_with_retry_after(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(
        db_url,
        daily_sim.base_url,
        RECORDER_DAILY_START_BUDGET_CALLS="1",
        RECORDER_DAILY_START_BUDGET_WINDOW_SECONDS="30",
        RECORDER_DAILY_START_BUDGET_WAIT_SECONDS="0.5",
    )
    async with service_factory(env) as svc:
        for name in ("first", "second"):
            await register(svc, name, f"{name}-room")
            await daily_sim.join(f"{name}-room")
        assert (await start(svc, "first")).json()["status"] == "started"
        refused = await start(svc, "second")
        assert refused.status_code == 429, refused.text
        # The window frees in about 30 s: that is when the caller is told to come back.
        assert 20 <= int(refused.headers["Retry-After"]) <= 31
        assert refused.json()["status_code"] == 429
        # The refused start left nothing behind: no claim, no call.
        r = await svc.client.get("/v1/meetings/second/recordings", headers=AUTH)
        assert r.json()["recordings"] == []
    assert [c["room"] for c in (await daily_sim.call_times())["calls"]] == ["first-room"]


async def test_not_hosting_is_shared_by_every_caller_on_every_replica(
    postgres_db_url: str,
    redis_url: str,
    redis_prefix: str,
    daily_sim: DailySim,
    service_factory: ServiceFactory,
) -> None:
    # One call per start (no retry budget); its answer is kept for 30 s, far beyond this test.
    env = shared_env(
        postgres_db_url,
        daily_sim,
        redis_url,
        redis_prefix,
        RECORDER_START_NOT_HOSTING_BUDGET_SECONDS="0",
        RECORDER_START_NOT_HOSTING_DELAY_SECONDS="30",
    )
    async with service_factory(env) as a, service_factory(env) as b:
        await register(a, "nobody-there", "empty-room")
        answers = [await start((a, b)[i % 2], "nobody-there") for i in range(10)]
        answers += await asyncio.gather(*(start((a, b)[i % 2], "nobody-there") for i in range(10)))
    assert [r.status_code for r in answers] == [409] * 20
    assert all(int(r.headers["Retry-After"]) >= 1 for r in answers)
    assert all("empty-room" not in r.text for r in answers)  # the room name is a join URL
    assert len((await daily_sim.call_times())["calls"]) == 1


async def test_the_budget_reports_grants_refusals_waiting_and_wait_time(
    db_url: str, daily_sim: DailySim
) -> None:
    from tests.integration.test_telemetry import traced_service

    env = service_env(
        db_url,
        daily_sim.base_url,
        RECORDER_DAILY_START_BUDGET_CALLS="1",
        RECORDER_DAILY_START_BUDGET_WINDOW_SECONDS="30",
        RECORDER_DAILY_START_BUDGET_WAIT_SECONDS="0.3",
    )
    async with traced_service(env) as t:
        for name in ("first", "second"):
            await register(t.svc, name, f"{name}-room")
            await daily_sim.join(f"{name}-room")
        assert (await start(t.svc, "first")).status_code == 200
        assert (await start(t.svc, "second")).status_code == 429
        text = (await t.svc.client.get("/metrics")).text
    samples = {
        (
            sample.name,
            tuple(sorted((k, v) for k, v in sample.labels.items() if not k.startswith("otel_"))),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    first = (("kind", "first"),)
    assert samples[("recorder_daily_start_budget_grants_total", first)] == 1
    assert samples[("recorder_daily_start_budget_refusals_total", first)] == 1
    assert samples[("recorder_daily_start_budget_waiting", ())] == 0
    assert samples[("recorder_daily_start_budget_wait_seconds_count", first)] == 1
    assert samples[("recorder_starts_total", (("outcome", "budget"), ("type", "raw-tracks")))] == 1


async def test_daily_s_own_retries_take_calls_from_the_budget_too(
    db_url: str, daily_sim: DailySim, service_factory: ServiceFactory
) -> None:
    env = service_env(
        db_url,
        daily_sim.base_url,
        RECORDER_DAILY_START_BUDGET_CALLS="1",
        RECORDER_DAILY_START_BUDGET_WINDOW_SECONDS="30",
        RECORDER_DAILY_START_BUDGET_WAIT_SECONDS="0.5",
    )
    async with service_factory(env) as svc:
        await register(svc, "flaky", "flaky-room")
        await daily_sim.join("flaky-room")
        await daily_sim.fault("start_recording", status=503, count=1, error="server-error", info="busy")
        r = await start(svc, "flaky")
        # The client's retry after the 503 found no call within the wait: 429, not "not hosting".
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) >= 20
    assert len((await daily_sim.call_times())["calls"]) == 1
