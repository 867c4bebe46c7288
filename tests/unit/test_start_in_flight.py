"""Joiners arriving at one process while a start of the same recording is in flight share its
answer instead of queueing for the lock one by one (adapters/single_flight.py, used by
services/starts.py): the rules alone, no server. tests/integration/test_start_in_flight.py runs
them through the service."""

from __future__ import annotations

import asyncio

import pytest

from recorder_service.adapters.single_flight import SingleFlight
from recorder_service.errors import DailyError, RoomNotHosting, StorageUnavailable
from recorder_service.services.starts import StartOutcome, _shared_answer

KEY = "start:m-1:raw-tracks"
STARTED = StartOutcome("started", "raw-tracks", "instance-1", "m-1")


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
