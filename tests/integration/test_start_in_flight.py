"""Joiners arriving at one process while a start of the same recording is in flight share its
answer instead of queueing for the lock one by one (adapters/single_flight.py, used by services/starts.py),
through the service with PostgreSQL and the Daily simulator. The rules alone: tests/unit/test_start_in_flight.py."""

from __future__ import annotations

import asyncio

from tests.integration.test_start import start
from tests.integration.test_telemetry import named, traced_start_room
from tests.plugins.simulator import DailySim


async def test_joiners_in_one_process_wait_for_the_first_start_not_for_the_lock(
    postgres_db_url: str, daily_sim: DailySim
) -> None:
    async with traced_start_room(postgres_db_url, daily_sim) as t:
        await daily_sim.latency("start_recording", 0.5)  # every joiner arrives while it runs
        answers = await asyncio.gather(*(start(t.svc) for _ in range(30)))
        statuses = [a.json()["status"] for a in answers]
        assert statuses.count("started") == 1 and statuses.count("already_active") == 29
        assert [s["count"] for s in (await daily_sim.calls())["starts"]] == [1]
        await t.wait_span(named("start.join_in_flight"))
        spans = t.spans.get_finished_spans()
        assert len([s for s in spans if s.name == "start.lock_wait"]) == 1
        assert len([s for s in spans if s.name == "start.join_in_flight"]) == 29


async def test_a_daily_failure_reaches_the_joiners_in_flight_once(
    postgres_db_url: str, daily_sim: DailySim
) -> None:
    async with traced_start_room(postgres_db_url, daily_sim) as t:
        await daily_sim.latency("start_recording", 0.2)
        await daily_sim.fault(
            "start_recording", status=500, count=3, error="server-error", info="workers exhausted"
        )
        answers = await asyncio.gather(*(start(t.svc) for _ in range(10)))
        assert [a.status_code for a in answers] == [502] * 10
        assert all("workers exhausted" in a.json()["detail"] for a in answers)
        # The first caller's bounded retries, not ten callers' worth.
        assert (await daily_sim.calls())["operations"]["start_recording"] == {"500": 3}
        r = await start(t.svc)
        assert r.json()["status"] == "started"
