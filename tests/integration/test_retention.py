"""Retention (contract §2): recordings older than their type's retention go like a deletion
request, with reason `retention`."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from recorder_service.adapters.db.engine import create_engine, session_factory
from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.services.deletions import RetentionPolicy, delete_expired
from tests.integration.test_webhooks import register
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import ServiceFactory
from tests.support.privacy import (
    cloud_ready,
    deletions,
    privacy_env,
    raw_ready,
    recordings_of,
    track_keys,
    wait_deleted_callbacks,
    wait_deletions_done,
)

# 0.00002 days is 1.7 s.
SHORT_DAYS = "0.00002"


async def test_expired_recordings_are_deleted_with_reason_retention(
    db_url: str, s3: S3Bucket, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    env = privacy_env(
        db_url,
        s3,
        callback_receiver,
        RECORDER_RETENTION_CLOUD_DAYS=SHORT_DAYS,
        RECORDER_RETENTION_INTERVAL_SECONDS="0.3",
    )
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        raw = await raw_ready(svc.client, s3)
        cloud = await cloud_ready(svc.client, s3)
        assert (await recordings_of(svc.client, "m-1"))["cloud_recording_available"] is True
        deadline = time.monotonic() + 20
        while True:
            statuses = {
                r["type"]: r["status"] for r in (await recordings_of(svc.client, "m-1"))["recordings"]
            }
            if statuses["cloud"] == "deleted":
                break
            assert time.monotonic() < deadline, statuses
            await asyncio.sleep(0.1)
        # Raw tracks have no retention set: kept.
        assert statuses["raw-tracks"] == "ready"
        [job] = await wait_deletions_done(svc.client, 1)
        assert job["reason"] == "retention"
        assert sorted(await s3.keys()) == sorted(track_keys(raw))
        [announced] = await wait_deleted_callbacks(callback_receiver, 1)
        assert (announced["data"]["recording_id"], announced["data"]["reason"]) == (
            cloud["recording_id"],
            "retention",
        )


async def test_both_retentions_and_fractions_of_days(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    env = privacy_env(
        db_url,
        s3,
        RECORDER_RETENTION_CLOUD_DAYS=SHORT_DAYS,
        RECORDER_RETENTION_RAW_TRACKS_DAYS=SHORT_DAYS,
        RECORDER_RETENTION_INTERVAL_SECONDS="0.3",
    )
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        await raw_ready(svc.client, s3)
        await cloud_ready(svc.client, s3)
        await wait_deletions_done(svc.client, 2)
        assert {r["status"] for r in (await recordings_of(svc.client, "m-1"))["recordings"]} == {"deleted"}
        assert await s3.keys() == []


async def test_only_ready_recordings_older_than_the_retention_expire(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(privacy_env(db_url, s3, RECORDER_BACKGROUND="false")) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3)
        await raw_ready(svc.client, s3)
        engine = create_engine(db_url)
        db = Database(engine, session_factory(engine))
        try:
            now = datetime.now(UTC)
            kept = RetentionPolicy(cloud_days=None, raw_tracks_days=None)
            assert await delete_expired(db, kept, now + timedelta(days=3650)) == 0
            ninety = RetentionPolicy(cloud_days=90, raw_tracks_days=None)
            assert await delete_expired(db, ninety, now + timedelta(days=89)) == 0
            assert await delete_expired(db, ninety, now + timedelta(days=91)) == 1
            assert await delete_expired(db, ninety, now + timedelta(days=91)) == 0  # already deleted
        finally:
            await engine.dispose()
        statuses = {r["type"]: r["status"] for r in (await recordings_of(svc.client, "m-1"))["recordings"]}
        assert statuses == {"cloud": "deleted", "raw-tracks": "ready"}
        [job] = await deletions(svc.client)
        assert (job["reason"], job["state"]) == ("retention", "pending")  # no loop runs here
