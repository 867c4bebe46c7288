"""Deletion metrics: jobs by reason and outcome, and the backlog of objects waiting for S3."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.integration.test_telemetry import _sample, traced_service
from tests.integration.test_webhooks import register
from tests.plugins.s3 import DedicatedS3Bucket
from tests.plugins.service import AUTH
from tests.support.privacy import cloud_ready, deletions, privacy_env, wait_deletions_done


async def _metric(
    client: httpx.AsyncClient, name: str, label: str, want: float, timeout_s: float = 15
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        text = (await client.get("/metrics")).text
        try:
            if _sample(text, name, label) == want:
                return
        except AssertionError:
            pass
        assert time.monotonic() < deadline, f"{name}{{{label}}} != {want}:\n" + "\n".join(
            line for line in text.splitlines() if "deletion" in line
        )
        await asyncio.sleep(0.1)


async def test_deletion_counters_and_backlog_gauges(
    postgres_db_url: str, s3_dedicated: DedicatedS3Bucket
) -> None:
    env = privacy_env(postgres_db_url, s3_dedicated, RECORDER_DELETION_RETRY_SECONDS="0.3")
    async with traced_service(env) as t:
        client = t.svc.client
        await register(t.svc, "m-1")
        await cloud_ready(client, s3_dedicated)
        await s3_dedicated.stop()
        assert (await client.delete("/v1/meetings/m-1/recordings", headers=AUTH)).status_code == 202
        await _metric(client, "recorder_deletions_total", 'outcome="requested"', 1)
        await _metric(client, "recorder_deletions_pending_objects", "", 1)
        text = (await client.get("/metrics")).text
        assert _sample(text, "recorder_deletions_total", 'outcome="retried",reason="request"') >= 1
        assert _sample(text, "recorder_deletions_oldest_pending_age_seconds", "") >= 0
        [job] = await deletions(client)
        assert job["state"] == "pending"
        await s3_dedicated.start()
        await wait_deletions_done(client, 1)
        await _metric(client, "recorder_deletions_total", 'outcome="completed"', 1)
        await _metric(client, "recorder_deletions_pending_objects", "", 0)
