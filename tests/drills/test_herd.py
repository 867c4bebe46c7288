"""Contract §4 guarantee: many participants join at once, on several replicas, and Daily
gets exactly one start (three service processes sharing PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.integration.test_start import MEETING_ID, ROOM, meeting_body
from tests.plugins.processes import replicas
from tests.plugins.service import AUTH, service_env
from tests.plugins.simulator import DailySim

pytestmark = pytest.mark.slow


async def test_herd_of_starts_across_three_replicas_reaches_daily_once(
    postgres_db_url: str, redis_url: str, redis_prefix: str, daily_sim: DailySim
) -> None:
    env = service_env(
        postgres_db_url,
        daily_sim.base_url,
        RECORDER_REDIS_URL=redis_url,
        RECORDER_REDIS_PREFIX=redis_prefix,
        RECORDER_LOG_LEVEL="WARNING",
    )
    async with replicas(env, 3) as procs, httpx.AsyncClient(timeout=30) as client:
        r = await client.put(f"{procs[0].url}/v1/meetings/{MEETING_ID}", json=meeting_body(), headers=AUTH)
        assert r.status_code == 201
        await daily_sim.join(ROOM)
        await daily_sim.latency("start_recording", 0.1)
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{procs[i % 3].url}/v1/meetings/{MEETING_ID}/recordings/start",
                    json={"type": "raw-tracks"},
                )
                for i in range(60)
            )
        )
        assert [a.status_code for a in answers] == [200] * 60
        statuses = [a.json()["status"] for a in answers]
        assert statuses.count("started") == 1
        assert statuses.count("already_active") == 59
        starts = (await daily_sim.calls())["starts"]
        assert [s["count"] for s in starts] == [1]
        assert (await daily_sim.calls())["operations"]["start_recording"] == {"200": 1}
