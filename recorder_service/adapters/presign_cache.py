"""Reuse of presigned playback URLs: signing one costs ~0.4-0.7 ms of CPU (botocore SigV4),
more than the rest of a playback redirect's own work once its database read is lean.

The promise kept: a URL handed out is valid for at least the `ttl_s` asked for. A URL is
signed for `ttl_s + width` seconds and reused only while it is younger than `width`, so it
always has more than `ttl_s` left. `width` is at most a tenth of the TTL and at most 60 s
(and 0, no reuse, when `ttl_s + width` would pass S3's 7-day ceiling on X-Amz-Expires).

The key is everything the URL encodes: bucket, object key, response content type and
disposition, TTL. A deleted recording is never served from here: playback reads the
recording from the database first, on every request, and asks for a URL only for a key it
found. Entries are bounded (least recently used goes first). URLs grant access: never log
them, nor this cache's contents."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

# SigV4 presigned URLs cannot live longer than 7 days.
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
MAX_REUSE_WIDTH_S = 60
DEFAULT_MAX_ENTRIES = 10_000

PresignKey = tuple[str, str, str, str, int]


def reuse_width_s(ttl_s: int) -> int:
    """How long a URL signed for `ttl_s + width` may be handed out: ≤ ttl/10, ≤ 60 s."""
    return max(0, min(MAX_REUSE_WIDTH_S, ttl_s // 10, MAX_PRESIGN_EXPIRES_S - ttl_s))


class PresignCache:
    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.time
    ) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[PresignKey, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: PresignKey) -> str | None:
        """A URL still young enough to have more than its TTL left, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        signed_at, url = entry
        # A clock set back only makes the URL's remaining life longer than promised.
        if self._clock() - signed_at >= reuse_width_s(key[4]):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return url

    def now(self) -> float:
        """Take this *before* signing and pass it to `put`: the URL is then at least this old."""
        return self._clock()

    def put(self, key: PresignKey, url: str, signed_at: float) -> None:
        if reuse_width_s(key[4]) <= 0:
            return
        self._entries[key] = (signed_at, url)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
