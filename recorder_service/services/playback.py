"""Playback: the latest ready cloud recording of a meeting, as a presigned URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.errors import RecordingNotFound


class PlaybackSigner(Protocol):
    async def ensure_reachable(self) -> None: ...

    async def presign_playback(
        self, key: str, *, ttl_s: int, content_type: str, filename: str | None = None
    ) -> str: ...


@dataclass(frozen=True)
class PlaybackLink:
    url: str
    ttl_s: int


async def playback_url(
    db: Database, signer: PlaybackSigner, meeting_id: str, selector: str | None, *, ttl_s: int
) -> PlaybackLink:
    async with db.transaction() as uow:
        recording = await uow.recordings.latest_ready_cloud(meeting_id, selector)
    if recording is None or recording.s3_key is None:
        raise RecordingNotFound(f"meeting {meeting_id} has no ready cloud recording")
    # Presigning is local; without this check a dead S3 would surface as a broken video.
    await signer.ensure_reachable()
    # Daily's keys have no extension: the URL itself tells S3 what to answer with.
    content_type = "audio/mp4" if recording.audio_only else "video/mp4"
    url = await signer.presign_playback(recording.s3_key, ttl_s=ttl_s, content_type=content_type)
    return PlaybackLink(url, ttl_s)
