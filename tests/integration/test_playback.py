"""Cloud playback (contract §4): 307 to a presigned URL that really serves the bytes as MP4."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.test_webhooks import ROOM, T0, register
from tests.plugins.s3 import DedicatedS3Bucket, S3Bucket
from tests.plugins.service import AUTH, ServiceFactory, playback, service_env
from tests.support.webhooks import envelope, post_webhook, ready_payload

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def s3_env(db_url: str, bucket: S3Bucket, **over: str) -> dict[str, str]:
    return service_env(
        db_url,
        RECORDER_S3_BUCKET=bucket.bucket,
        RECORDER_S3_ENDPOINT_URL=bucket.endpoint_url,
        RECORDER_S3_REGION=bucket.region,
        **over,
    )


async def make_ready(
    client: httpx.AsyncClient,
    key: str,
    start_offset_s: float = 60,
    type_: str = "cloud",
    duration: float = 323,
) -> dict[str, Any]:
    payload = ready_payload(
        room=ROOM, start_ts=T0.timestamp() + start_offset_s, s3_key=key, type_=type_, duration=duration
    )
    r = await post_webhook(client, envelope("recording.ready-to-download", payload))
    assert r.json()["state"] == "applied", r.text
    return payload


async def test_redirect_serves_the_recording_inline_as_mp4(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    key = "acme/standup-7f3a9c/1767260345412"  # no extension, as Daily writes it
    await s3.put(key, VIDEO)
    async with service_factory(s3_env(db_url, s3, RECORDER_PRESIGN_TTL_SECONDS="900")) as svc:
        await register(svc, "m-1")
        await make_ready(svc.client, key)
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert r.status_code == 307
        location = r.headers["location"]
        # Signed for the TTL plus the reuse window (≤ TTL/10, ≤ 60 s): never less than promised.
        assert "X-Amz-Expires=960" in location
        max_age = int(r.headers["cache-control"].split("max-age=")[1])
        assert 0 <= max_age < 900
        async with httpx.AsyncClient() as plain:
            media = await plain.get(location)
        assert media.status_code == 200
        assert media.content == VIDEO
        assert media.headers["content-type"] == "video/mp4"
        assert media.headers["content-disposition"].startswith("inline")
        head = await svc.client.head("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert head.status_code == 307
        assert head.headers["location"].split("?")[0] == location.split("?")[0]


async def test_audio_only_recordings_play_as_audio(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    await s3.put("acme/room/2", VIDEO)
    async with service_factory(s3_env(db_url, s3)) as svc:
        await register(svc, "m-1")
        await make_ready(svc.client, "acme/room/2", type_="cloud-audio-only")
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        async with httpx.AsyncClient() as plain:
            media = await plain.get(r.headers["location"])
        assert media.headers["content-type"] == "audio/mp4"


async def test_latest_ready_is_served_and_recording_id_picks_one(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    await s3.put("k/first", b"first")
    await s3.put("k/second", b"second")
    async with service_factory(s3_env(db_url, s3)) as svc:
        await register(svc, "m-1")
        first = await make_ready(svc.client, "k/first", start_offset_s=60, duration=100)
        await make_ready(svc.client, "k/second", start_offset_s=600, duration=200)
        m = (await svc.client.get("/v1/meetings/m-1/recordings", headers=AUTH)).json()
        assert m["cloud_recording_duration"] == 200  # the latest, the one playback serves
        async with httpx.AsyncClient() as plain:
            latest = await plain.get(
                (await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))).headers[
                    "location"
                ]
            )
            assert latest.content == b"second"
            r = await svc.client.get(
                "/v1/meetings/m-1/cloud-recording", params=playback("m-1", recording_id=first["recording_id"])
            )
            assert (await plain.get(r.headers["location"])).content == b"first"
            ours = next(x["id"] for x in m["recordings"] if x["s3_key"] == "k/first")
            r = await svc.client.get(
                "/v1/meetings/m-1/cloud-recording", params=playback("m-1", recording_id=ours)
            )
            assert (await plain.get(r.headers["location"])).content == b"first"
        r = await svc.client.get(
            "/v1/meetings/m-1/cloud-recording", params=playback("m-1", recording_id="nope")
        )
        assert r.status_code == 404


async def test_nothing_ready_is_404(db_url: str, s3: S3Bucket, service_factory: ServiceFactory) -> None:
    async with service_factory(s3_env(db_url, s3)) as svc:
        assert (
            await svc.client.get("/v1/meetings/unknown/cloud-recording", params=playback("unknown"))
        ).status_code == 404
        await register(svc, "m-1")
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert r.status_code == 404
        assert r.json()["status_code"] == 404
        assert (await svc.client.get("/v1/meetings/bad id!/cloud-recording")).status_code == 400


async def test_a_deleted_recording_is_404_right_after_a_cached_redirect(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    await s3.put("k/gone", VIDEO)
    async with service_factory(s3_env(db_url, s3)) as svc:
        await register(svc, "m-1")
        await make_ready(svc.client, "k/gone")
        first = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        again = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert first.status_code == again.status_code == 307
        assert again.headers["location"] == first.headers["location"]  # served from the cache
        r = await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)
        assert r.status_code == 202
        gone = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert gone.status_code == 404
        assert "location" not in gone.headers


async def test_database_down_is_503_not_500(s3: S3Bucket, service_factory: ServiceFactory) -> None:
    # Playback reads without a transaction (Database.autocommit): the same mapping as everything else.
    async with service_factory(s3_env("postgresql+psycopg://postgres@127.0.0.1:1/none", s3)) as svc:
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert r.status_code == 503
        assert "database" in r.json()["detail"]
        assert "postgres" not in r.json()["detail"]


async def test_s3_down_is_503_not_500(
    db_url: str, s3_dedicated: DedicatedS3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(s3_env(db_url, s3_dedicated)) as svc:
        await register(svc, "m-1")
        await make_ready(svc.client, "k/x")
        await s3_dedicated.stop()
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert r.status_code == 503
        assert "Retry-After" in r.headers
        await s3_dedicated.start()
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert r.status_code == 307
