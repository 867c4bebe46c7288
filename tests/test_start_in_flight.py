"""Joiners arriving at one process while a start of the same recording is in flight share its
answer instead of queueing for the lock one by one (adapters/single_flight.py, used by services/starts.py)."""

from __future__ import annotations

import asyncio

import pytest

from recorder_service.adapters.single_flight import SingleFlight
from recorder_service.errors import DailyError, RoomNotHosting, StorageUnavailable
from recorder_service.services.starts import StartOutcome, _shared_answer
from tests.plugins.simulator import DailySim
from tests.test_start import start
from tests.test_telemetry import named, traced_start_room

KEY = "start:m-1:raw-tracks"
STARTED = StartOutcome("started", "raw-tracks", "instance-1", "m-1")


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


async def _follower(flights: SingleFlight[StartOutcome]) -> asyncio.Task[StartOutcome | None]:
    flight = flights.current(KEY)
    assert flight is not None
    task = asyncio.create_task(_shared_answer(flight))
    await asyncio.sleep(0)
    return task


async def _follower_of_failed_start(
    flights: SingleFlight[StartOutcome], error: Exception
) -> asyncio.Task[StartOutcome | None]:
    """A caller that joined a start which then failed with `error`."""
    follower = None
    try:
        with flights.leading(KEY):
            follower = await _follower(flights)
            raise error
    except type(error):
        pass
    assert follower is not None and flights.current(KEY) is None
    return follower


async def test_a_running_recording_is_already_active_for_the_joiners() -> None:
    flights = SingleFlight[StartOutcome]()
    with flights.leading(KEY) as flight:
        follower = await _follower(flights)
        flight.set_result(STARTED)
    assert (await follower) == StartOutcome("already_active", "raw-tracks", "instance-1", "m-1")
    assert flights.current(KEY) is None


@pytest.mark.parametrize(
    "error",
    [RoomNotHosting("not hosting yet", retry_after_s=3), DailyError("Daily failed", status_code=503)],
)
async def test_daily_refusals_are_shared(error: Exception) -> None:
    follower = await _follower_of_failed_start(SingleFlight[StartOutcome](), error)
    with pytest.raises(type(error)) as shared:
        await follower
    assert str(shared.value) == str(error)
    if isinstance(error, RoomNotHosting):
        assert isinstance(shared.value, RoomNotHosting) and shared.value.retry_after_s == 3
    else:
        assert isinstance(shared.value, DailyError) and shared.value.status_code == 503


async def test_our_own_failures_and_cancellations_send_joiners_to_try_themselves() -> None:
    flights = SingleFlight[StartOutcome]()
    follower = await _follower_of_failed_start(flights, StorageUnavailable("database unavailable"))
    assert await follower is None

    async def cancelled_leader() -> None:
        with flights.leading(KEY):
            await asyncio.sleep(10)

    leader = asyncio.create_task(cancelled_leader())
    await asyncio.sleep(0)
    follower = await _follower(flights)
    leader.cancel()
    assert await follower is None
    assert flights.current(KEY) is None
