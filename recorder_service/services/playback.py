"""Playback: the latest ready cloud recording of a meeting, as a presigned URL; who may have it
(playback tokens); and the link Reflector's backend asks for after its own access check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.core.models import Recording
from recorder_service.core.playback_tokens import MAX_LIFETIME_S, PlaybackTokens, TokenVerdict
from recorder_service.errors import PlaybackTokenMissing, PlaybackTokenRejected, RecordingNotFound


class PlaybackSigner(Protocol):
    async def ensure_reachable(self) -> None: ...

    async def presign_playback(
        self, key: str, *, ttl_s: int, content_type: str, filename: str | None = None
    ) -> str: ...


@dataclass(frozen=True)
class PlaybackLink:
    url: str
    ttl_s: int


@dataclass(frozen=True)
class CloudRecordingLink:
    url: str
    recording_id: str
    token: str | None
    expires_at: datetime
    duration: int | None
    content_type: str


# One answer for every rejection, whatever exists: the check runs before any lookup.
_REJECTED = "playback token is invalid, expired, or not for this meeting"


def check_playback_token(
    tokens: PlaybackTokens | None, meeting_id: str, token: str | None, now_s: float
) -> None:
    """Raises unless `token` allows playing `meeting_id`. `tokens` None: playback is open.
    Pure computation, no I/O: callers run it before looking anything up."""
    if tokens is None:
        return
    verdict = tokens.check(meeting_id, token, now_s)
    if verdict == TokenVerdict.VALID:
        return
    if verdict == TokenVerdict.MISSING:
        raise PlaybackTokenMissing("a playback token is required: ?token=<token minted by Reflector>")
    raise PlaybackTokenRejected(_REJECTED)


async def _playable(db: Database, meeting_id: str, selector: str | None) -> Recording:
    # One SELECT: no transaction around it (hot path: every playback redirect).
    async with db.autocommit() as reads:
        recording = await reads.recordings.latest_ready_cloud(meeting_id, selector)
    if recording is None or recording.s3_key is None:
        raise RecordingNotFound(f"meeting {meeting_id} has no ready cloud recording")
    return recording


def _content_type(recording: Recording) -> str:
    return "audio/mp4" if recording.audio_only else "video/mp4"


async def _presign(signer: PlaybackSigner, recording: Recording, ttl_s: int) -> str:
    assert recording.s3_key is not None
    # Presigning is local; without this check a dead S3 would surface as a broken video.
    await signer.ensure_reachable()
    # Daily's keys have no extension: the URL itself tells S3 what to answer with.
    return await signer.presign_playback(recording.s3_key, ttl_s=ttl_s, content_type=_content_type(recording))


async def playback_url(
    db: Database, signer: PlaybackSigner, meeting_id: str, selector: str | None, *, ttl_s: int
) -> PlaybackLink:
    recording = await _playable(db, meeting_id, selector)
    return PlaybackLink(await _presign(signer, recording, ttl_s), ttl_s)


async def cloud_recording_link(
    db: Database,
    signer: PlaybackSigner,
    tokens: PlaybackTokens | None,
    meeting_id: str,
    selector: str | None,
    *,
    presign_ttl_s: int,
    now: datetime,
) -> CloudRecordingLink:
    """A presigned URL and a fresh playback token for one recording, both valid until
    `expires_at`: the presign TTL, capped at a token's 24 h."""
    recording = await _playable(db, meeting_id, selector)
    ttl_s = min(presign_ttl_s, MAX_LIFETIME_S)
    exp = int(now.timestamp()) + ttl_s
    url = await _presign(signer, recording, ttl_s)
    return CloudRecordingLink(
        url=url,
        recording_id=recording.id,
        token=tokens.mint(meeting_id, exp) if tokens is not None else None,
        expires_at=datetime.fromtimestamp(exp, UTC),
        duration=recording.duration,
        content_type=_content_type(recording),
    )
