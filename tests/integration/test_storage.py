from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest

from recorder_service.adapters.storage import RecordingStorage, StorageNotConfigured, inline_disposition
from recorder_service.errors import StorageUnavailable
from tests.plugins.s3 import DedicatedS3Bucket, S3Bucket

# Daily's default cloud key: {domain}/{room}/{epoch ms}, no extension.
CLOUD_KEY = "acme/room/1692124183028"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


@pytest.fixture
async def storage(s3: S3Bucket) -> AsyncIterator[RecordingStorage]:
    async with RecordingStorage.open(bucket=s3.bucket, region=s3.region, endpoint_url=s3.endpoint_url) as st:
        yield st


@pytest.fixture
async def dedicated_storage(s3_dedicated: DedicatedS3Bucket) -> AsyncIterator[RecordingStorage]:
    async with RecordingStorage.open(
        bucket=s3_dedicated.bucket,
        region=s3_dedicated.region,
        endpoint_url=s3_dedicated.endpoint_url,
        reachability_ttl_s=60,
    ) as st:
        yield st


async def _fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10)) as http:
        return await http.get(url)


async def test_presigned_url_plays_extensionless_key_as_inline_mp4(
    s3: S3Bucket, storage: RecordingStorage
) -> None:
    await s3.put(CLOUD_KEY, VIDEO_BYTES)

    url = await storage.presign_playback(CLOUD_KEY, ttl_s=600, content_type="video/mp4")
    response = await _fetch(url)

    assert response.status_code == 200
    assert response.content == VIDEO_BYTES
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"].startswith("inline")


async def test_presigned_url_serves_audio_only_recording_as_audio_mp4(
    s3: S3Bucket, storage: RecordingStorage
) -> None:
    await s3.put(CLOUD_KEY, VIDEO_BYTES, content_type="binary/octet-stream")

    url = await storage.presign_playback(
        CLOUD_KEY, ttl_s=600, content_type="audio/mp4", filename="meeting.m4a"
    )
    response = await _fetch(url)

    assert response.status_code == 200
    assert response.content == VIDEO_BYTES
    assert response.headers["content-type"] == "audio/mp4"
    assert response.headers["content-disposition"] == 'inline; filename="meeting.m4a"'


async def test_presigned_url_expiry_is_the_ttl_plus_the_reuse_window(
    s3: S3Bucket, storage: RecordingStorage
) -> None:
    url = await storage.presign_playback(CLOUD_KEY, ttl_s=1234, content_type="video/mp4")

    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query)
    # Reused for up to min(60 s, TTL/10) = 60 s: handed out with at least the TTL left.
    assert query["X-Amz-Expires"] == ["1294"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    # Path-style addressing against an S3-compatible endpoint, key unchanged.
    assert f"{parsed.scheme}://{parsed.netloc}" == s3.endpoint_url
    assert parsed.path == f"/{s3.bucket}/{CLOUD_KEY}"


def test_inline_disposition_quotes_or_encodes_the_filename() -> None:
    assert inline_disposition(None) == "inline"
    assert inline_disposition("a b.mp4") == 'inline; filename="a b.mp4"'
    assert inline_disposition('réunion "x".mp4') == (
        "inline; filename=\"r_union _x_.mp4\"; filename*=UTF-8''r%C3%A9union%20%22x%22.mp4"
    )


async def test_object_exists_reports_present_and_missing_keys(
    s3: S3Bucket, storage: RecordingStorage
) -> None:
    await s3.put(CLOUD_KEY, b"x")

    assert await storage.object_exists(CLOUD_KEY) is True
    assert await storage.object_exists(CLOUD_KEY + "0") is False


async def test_ping_succeeds_while_the_store_answers(storage: RecordingStorage) -> None:
    await storage.ping()
    await storage.ensure_reachable()


async def test_ping_raises_storage_unavailable_quickly_when_the_store_is_down(
    s3_dedicated: DedicatedS3Bucket, dedicated_storage: RecordingStorage
) -> None:
    await dedicated_storage.ping()
    await s3_dedicated.stop()

    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as raised:
        await dedicated_storage.ping()
    assert time.monotonic() - started < 3
    assert raised.value.__cause__ is not None
    with pytest.raises(StorageUnavailable):
        await dedicated_storage.object_exists(CLOUD_KEY)

    await s3_dedicated.start()
    await dedicated_storage.ping()


async def test_presigning_needs_no_network(
    s3_dedicated: DedicatedS3Bucket, dedicated_storage: RecordingStorage
) -> None:
    await s3_dedicated.stop()

    url = await dedicated_storage.presign_playback(CLOUD_KEY, ttl_s=60, content_type="video/mp4")

    assert url.startswith(s3_dedicated.endpoint_url)


async def test_ensure_reachable_trusts_a_recent_ping_and_rechecks_after_a_failure(
    s3_dedicated: DedicatedS3Bucket, dedicated_storage: RecordingStorage
) -> None:
    await dedicated_storage.ensure_reachable()
    await s3_dedicated.stop()

    # Within reachability_ttl_s (60 s here) the last success stands: no round trip.
    await dedicated_storage.ensure_reachable()

    with pytest.raises(StorageUnavailable):
        await dedicated_storage.ping()
    # A failure is not cached as success: the next call probes again, and fails.
    with pytest.raises(StorageUnavailable):
        await dedicated_storage.ensure_reachable()

    await s3_dedicated.start()
    await dedicated_storage.ensure_reachable()


async def test_ensure_reachable_with_zero_ttl_sees_the_store_go_down(
    s3_dedicated: DedicatedS3Bucket,
) -> None:
    async with RecordingStorage.open(
        bucket=s3_dedicated.bucket,
        region=s3_dedicated.region,
        endpoint_url=s3_dedicated.endpoint_url,
        reachability_ttl_s=0,
    ) as storage:
        await storage.ensure_reachable()
        await s3_dedicated.stop()
        with pytest.raises(StorageUnavailable):
            await storage.ensure_reachable()


async def test_ping_reports_a_missing_bucket_as_unavailable(s3: S3Bucket) -> None:
    async with RecordingStorage.open(
        bucket=s3.bucket + "-missing", region=s3.region, endpoint_url=s3.endpoint_url
    ) as storage:
        with pytest.raises(StorageUnavailable):
            await storage.ping()


async def test_playback_without_a_bucket_raises_storage_not_configured(s3: S3Bucket) -> None:
    async with RecordingStorage.open(bucket=None, region=s3.region, endpoint_url=s3.endpoint_url) as storage:
        with pytest.raises(StorageNotConfigured):
            await storage.presign_playback(CLOUD_KEY, ttl_s=60, content_type="video/mp4")
        with pytest.raises(StorageNotConfigured):
            await storage.ping()
        with pytest.raises(StorageNotConfigured):
            await storage.object_exists(CLOUD_KEY)
