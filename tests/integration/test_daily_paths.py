"""Every path segment sent to Daily is quoted: a room name or id never reaches another Daily
path with the service's API key (a registered room "../../_sim/reset?x=" once reset the simulator)."""

from __future__ import annotations

import httpx
import pytest

from recorder_service.adapters.daily.client import DailyClient, segment
from recorder_service.errors import DailyError
from tests.plugins.simulator import DailySim


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("room-1_a", "room-1_a"),
        ("a/b", "a%2Fb"),
        ("../../_sim/reset?x=", "..%2F..%2F_sim%2Freset%3Fx%3D"),
        ("a b#c", "a%20b%23c"),
    ],
)
def test_segments_are_quoted_whole(value: str, quoted: str) -> None:
    assert segment(value) == quoted


async def test_a_hostile_room_name_reaches_no_other_daily_path(daily_sim: DailySim) -> None:
    await daily_sim.join("bystander")
    http = DailyClient.build_http(daily_sim.base_url, "sim-key", 5.0)
    async with http:
        client = DailyClient(http, max_attempts=1)
        with pytest.raises(DailyError) as caught:
            await client.start_recording(
                "../../_sim/reset?x=", type="raw-tracks", instance_id="7c6b1f7e-9a55-4d38-8f43-0d7c1b2a3e4f"
            )
        assert caught.value.status_code == 404
        with pytest.raises(DailyError):
            await client.get_recording_raw("../../_sim/reset?x=")
    # The simulator was not reset: the bystander is still in its room.
    async with httpx.AsyncClient() as plain:
        presence = await plain.get(
            f"{daily_sim.base_url}/rooms/bystander/presence", headers=daily_sim.auth_headers
        )
    assert presence.json()["total_count"] == 1
