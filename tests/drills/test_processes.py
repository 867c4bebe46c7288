"""`serve` is a complete deployment (it runs the loops); `worker` runs only the loops; both stop
cleanly on SIGTERM (contract §8)."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.integration.test_callbacks import callback_env, raw_tracks_ready
from tests.integration.test_start import MEETING_ID, ROOM, meeting_body
from tests.integration.test_webhooks import register_with
from tests.plugins.processes import replicas, spawn
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.service import AUTH, service_env
from tests.plugins.simulator import DailySim

pytestmark = pytest.mark.slow


async def test_serve_reconciles_on_its_own(postgres_db_url: str, daily_sim: DailySim) -> None:
    env = service_env(
        postgres_db_url,
        daily_sim.base_url,
        RECORDER_BACKGROUND="true",
        RECORDER_RECONCILE_INTERVAL_SECONDS="0.5",
        RECORDER_RECONCILE_PAGE_PAUSE_SECONDS="0",
    )
    async with replicas(env, 1) as [svc], httpx.AsyncClient(base_url=svc.url) as client:
        assert (
            await client.put(f"/v1/meetings/{MEETING_ID}", json=meeting_body(), headers=AUTH)
        ).status_code == 201
        await daily_sim.join(ROOM)
        r = await client.post(f"/v1/meetings/{MEETING_ID}/recordings/start", json={"type": "raw-tracks"})
        assert r.json()["status"] == "started"
        await daily_sim.end_meeting(ROOM)  # no webhook configured: Daily's events are lost
        for _ in range(100):
            recs = (await client.get(f"/v1/meetings/{MEETING_ID}/recordings", headers=AUTH)).json()[
                "recordings"
            ]
            if recs[0]["status"] == "ready":
                break
            await asyncio.sleep(0.1)
        assert recs[0]["status"] == "ready"


async def test_worker_delivers_and_stops_cleanly_on_sigterm(
    postgres_db_url: str, callback_receiver: CallbackReceiver
) -> None:
    serve_env = callback_env(postgres_db_url, callback_receiver, RECORDER_BACKGROUND="false")
    async with replicas(serve_env, 1) as [api], httpx.AsyncClient(base_url=api.url) as client:
        await register_with(client, "m-1")
        await raw_tracks_ready(client)
        await asyncio.sleep(0.5)
        assert callback_receiver.all_requests == []  # the API process alone delivers nothing
        worker = spawn(callback_env(postgres_db_url, callback_receiver), "worker")
        try:
            await callback_receiver.wait_for(1, timeout_s=15)
        finally:
            started = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(worker.process.wait, 25)
        assert code == 0
        assert time.monotonic() - started < 10


def test_serve_refuses_an_unmigrated_postgres_database() -> None:
    import subprocess
    import sys
    import uuid

    import psycopg
    from psycopg import sql

    from tests.plugins.database import PG_ADMIN_DSN, PG_HOST, _drop_database

    name = f"recorder_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        env = service_env(f"postgresql+psycopg://{PG_HOST}/{name}") | {"PATH": "/usr/bin"}
        result = subprocess.run(
            [sys.executable, "-m", "recorder_service.cli", "serve", "--port", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "recorder-service migrate" in result.stderr
    finally:
        _drop_database(name)
