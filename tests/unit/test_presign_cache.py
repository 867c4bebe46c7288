"""Presigned URL reuse: never less than the promised lifetime left, keys kept apart, bounded."""

from __future__ import annotations

import urllib.parse
from typing import Any, cast

import pytest

from recorder_service.adapters.presign_cache import (
    MAX_PRESIGN_EXPIRES_S,
    PresignCache,
    reuse_width_s,
)
from recorder_service.adapters.storage import RecordingStorage


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeS3:
    """Signs like botocore as far as this cache cares: the URL tells when it was signed
    (by the same clock) and for how long."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.signed = 0

    async def generate_presigned_url(self, _op: str, *, Params: dict[str, str], ExpiresIn: int) -> str:
        self.signed += 1
        query = urllib.parse.urlencode(
            {
                "signed_at": repr(self.clock.now),
                "expires": ExpiresIn,
                "ct": Params["ResponseContentType"],
                "cd": Params["ResponseContentDisposition"],
                "n": self.signed,
            }
        )
        return f"https://s3.test/{Params['Bucket']}/{Params['Key']}?{query}"


def _storage(clock: Clock, *, max_entries: int = 10_000) -> tuple[RecordingStorage, FakeS3]:
    s3 = FakeS3(clock)
    cache = PresignCache(max_entries=max_entries, clock=clock)
    return RecordingStorage(cast(Any, s3), "bucket", presign_cache=cache), s3


def _left_s(url: str, now: float) -> float:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return float(q["signed_at"][0]) + int(q["expires"][0]) - now


@pytest.mark.parametrize(
    "ttl_s", [60, 61, 600, 3600, 86400, MAX_PRESIGN_EXPIRES_S - 30, MAX_PRESIGN_EXPIRES_S]
)
async def test_a_handed_out_url_always_has_at_least_the_ttl_left(ttl_s: int) -> None:
    clock = Clock()
    storage, s3 = _storage(clock)
    # Every 0.25 s for three reuse windows (or 30 s when there is no reuse).
    for _ in range(4 * max(30, 3 * reuse_width_s(ttl_s))):
        url = await storage.presign_playback("a/room/1", ttl_s=ttl_s, content_type="video/mp4")
        assert _left_s(url, clock.now) >= ttl_s
        assert (
            int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["expires"][0])
            <= MAX_PRESIGN_EXPIRES_S
        )
        clock.now += 0.25
    width = reuse_width_s(ttl_s)
    if width:
        assert s3.signed <= 4 * max(30, 3 * width) / (4 * width) + 1  # reused within a window
    else:
        assert s3.signed == 4 * 30  # no room under S3's 7-day ceiling: never reused


def test_reuse_width_is_at_most_a_tenth_of_the_ttl_and_a_minute() -> None:
    assert reuse_width_s(60) == 6
    assert reuse_width_s(3600) == 60
    assert reuse_width_s(MAX_PRESIGN_EXPIRES_S) == 0
    for ttl in range(60, 100_000, 7):
        assert 0 <= reuse_width_s(ttl) <= min(60, ttl / 10)


async def test_a_url_is_reused_within_its_window_and_resigned_after() -> None:
    clock = Clock()
    storage, s3 = _storage(clock)
    first = await storage.presign_playback("k", ttl_s=3600, content_type="video/mp4")
    clock.now += 59.9
    assert await storage.presign_playback("k", ttl_s=3600, content_type="video/mp4") == first
    clock.now += 0.1
    assert await storage.presign_playback("k", ttl_s=3600, content_type="video/mp4") != first
    assert s3.signed == 2


async def test_a_clock_set_back_still_hands_out_enough_lifetime() -> None:
    clock = Clock()
    storage, _ = _storage(clock)
    await storage.presign_playback("k", ttl_s=3600, content_type="video/mp4")
    clock.now -= 1000
    url = await storage.presign_playback("k", ttl_s=3600, content_type="video/mp4")
    assert _left_s(url, clock.now) >= 3600


async def test_urls_are_kept_apart_by_key_content_type_disposition_and_ttl() -> None:
    clock = Clock()
    storage, s3 = _storage(clock)
    variants: list[tuple[str, int, str, str | None]] = [
        ("meeting-a/rec-1", 3600, "video/mp4", None),
        ("meeting-a/rec-2", 3600, "video/mp4", None),
        ("meeting-b/rec-1", 3600, "video/mp4", None),
        ("meeting-a/rec-1", 3600, "audio/mp4", None),
        ("meeting-a/rec-1", 3600, "video/mp4", "x.mp4"),
        ("meeting-a/rec-1", 600, "video/mp4", None),
    ]

    async def sign(key: str, ttl_s: int, content_type: str, filename: str | None) -> str:
        return await storage.presign_playback(key, ttl_s=ttl_s, content_type=content_type, filename=filename)

    first = [await sign(*v) for v in variants]
    assert len(set(first)) == s3.signed == len(variants)
    clock.now += 1
    assert [await sign(*v) for v in variants] == first  # each reused for its own parameters only
    assert s3.signed == len(variants)


async def test_the_cache_is_bounded_least_recently_used_first() -> None:
    clock = Clock()
    storage, s3 = _storage(clock, max_entries=3)
    for key in ("k1", "k2", "k3"):
        await storage.presign_playback(key, ttl_s=3600, content_type="video/mp4")
    await storage.presign_playback("k1", ttl_s=3600, content_type="video/mp4")  # k1 now most recent
    await storage.presign_playback("k4", ttl_s=3600, content_type="video/mp4")  # evicts k2
    assert s3.signed == 4
    await storage.presign_playback("k1", ttl_s=3600, content_type="video/mp4")
    await storage.presign_playback("k3", ttl_s=3600, content_type="video/mp4")
    assert s3.signed == 4
    await storage.presign_playback("k2", ttl_s=3600, content_type="video/mp4")
    assert s3.signed == 5


def test_default_bound_is_ten_thousand() -> None:
    cache = PresignCache(clock=Clock())
    for i in range(10_050):
        cache.put(("b", f"k{i}", "video/mp4", "inline", 3600), "u", 0.0)
    assert len(cache) == 10_000
