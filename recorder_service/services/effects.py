"""What each Daily recording event does to our recordings (and the outbox).

Every function is idempotent: a recording is identified by Daily's recording id once
known, so a webhook and the reconciler reporting the same recording have one effect."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from recorder_service.adapters.daily.events import (
    MeetingPayload,
    RecordingErrorPayload,
    RecordingReadyEvent,
    RecordingStartedPayload,
    ready_from_event,
)
from recorder_service.adapters.db.unit_of_work import UnitOfWork
from recorder_service.core.callbacks import (
    cloud_ready_data,
    encode_callback,
    new_message_id,
    raw_tracks_ready_data,
)
from recorder_service.core.deletions import (
    DeletionReason,
    DeletionScope,
    recording_object_keys,
    split_video_tracks,
)
from recorder_service.core.models import (
    Meeting,
    OutgoingCallback,
    Recording,
    RecordingReady,
    RecordingType,
    new_recording_id,
    type_of_instance,
)
from recorder_service.core.statuses import InboxState, RecordingStatus
from recorder_service.services.deletions import queue_deletion
from recorder_service.services.matching import meeting_for_instance, meeting_for_room
from recorder_service.telemetry import current_traceparent

# An error event fails the newest session of its instanceId that has not finished.
ERRORABLE = (RecordingStatus.STARTING, RecordingStatus.RECORDING, RecordingStatus.FINISHING)


class Effect(msgspec.Struct, frozen=True):
    state: InboxState
    meeting_id: str | None = None
    recording_id: str | None = None
    detail: str | None = None
    callback_enqueued: bool = False
    deletion_queued: bool = False


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# A claim's status can move once under a started event (starting -> recording, by the start
# call); one more try covers that, more would only spin on a row that keeps changing.
_NAMING_TRIES = 3


async def _open_session(
    uow: UnitOfWork,
    meeting: Meeting,
    rec_type: RecordingType,
    *,
    instance_id: str | None,
    daily_id: str,
    start_ts: int,
) -> str:
    """The recording Daily says started: our claim if one is waiting, else a new session."""
    active = await uow.recordings.find_active(meeting.id, rec_type)
    for _ in range(_NAMING_TRIES):
        if active is None or active.daily_recording_id is not None:
            break
        if await uow.recordings.name_session(
            active.id,
            expected=active.status,
            status=RecordingStatus.RECORDING,
            daily_recording_id=daily_id,
            start_ts=start_ts,
            started_at=active.started_at or _ts(start_ts),
        ):
            return active.id
        # Its status moved under us. The start call confirming it (starting -> recording) leaves
        # it unnamed: name it again. A concurrent event that named it first, or a deletion, ends
        # the loop: another session, as below.
        active = await uow.recordings.find_active(meeting.id, rec_type)
    if active is None:
        # Deleted while Daily recorded it, before we learned its Daily id: it stays deleted.
        for deleted in await uow.recordings.deleted_unnamed(meeting.id, rec_type):
            if deleted.started_at is not None and await uow.recordings.name_session(
                deleted.id,
                expected=RecordingStatus.DELETED,
                daily_recording_id=daily_id,
                start_ts=start_ts,
            ):
                return deleted.id
    if active is not None:
        # Daily runs one session per instanceId: a new one means the old one has ended.
        await uow.recordings.set_fields_unless_deleted(active.id, status=RecordingStatus.FINISHING)
    row = await uow.recordings.insert(
        Recording(
            id=new_recording_id(),
            meeting_id=meeting.id,
            type=rec_type,
            instance_id=instance_id,
            status=RecordingStatus.RECORDING,
            daily_recording_id=daily_id,
            room_name=meeting.room_name,
            start_ts=start_ts,
            started_at=_ts(start_ts),
        )
    )
    return row.id


async def apply_started(uow: UnitOfWork, p: RecordingStartedPayload, now: datetime) -> Effect:
    known = await uow.recordings.get_by_daily_id(p.recording_id)
    if known is not None:
        if known.status == RecordingStatus.STARTING:
            await uow.recordings.set_fields_unless_deleted(known.id, status=RecordingStatus.RECORDING)
        return Effect(InboxState.APPLIED, known.meeting_id, known.id, "already known")
    resolved: tuple[Meeting, RecordingType] | None = None
    if p.instance_id:
        resolved = await meeting_for_instance(uow, p.instance_id)
    if resolved is None and p.room_name:
        meeting = await meeting_for_room(uow, p.room_name, p.start_ts)
        if meeting is not None:
            rec_type = type_of_instance(meeting.id, p.instance_id) or (
                "raw-tracks" if "raw" in (p.action or "") else "cloud"
            )
            resolved = (meeting, rec_type)
    if resolved is None:
        return Effect(InboxState.ORPHAN, detail="no registered meeting matches this recording yet")
    meeting, rec_type = resolved
    recording_id = await _open_session(
        uow, meeting, rec_type, instance_id=p.instance_id, daily_id=p.recording_id, start_ts=p.start_ts_s
    )
    return Effect(InboxState.APPLIED, meeting.id, recording_id)


async def _sessions_for_ready(uow: UnitOfWork, meeting: Meeting, ready: RecordingReady) -> list[Recording]:
    """Unfinished sessions of this meeting and type that Daily has not named yet, the one
    started closest to the recording's start first."""
    # Not "starting": a claim whose start Daily has not even accepted cannot be finished. Deleted
    # sessions Daily had accepted are candidates too: this event brings the keys to delete.
    candidates = await uow.recordings.ready_candidates(meeting.id, ready.recording_type)
    return sorted(
        candidates,
        key=lambda r: (
            abs((r.started_at or _ts(ready.start_ts)).timestamp() - ready.start_ts),
            r.status == RecordingStatus.DELETED,  # equally close: a live session first
            r.id,
        ),
    )


async def apply_ready(
    uow: UnitOfWork, event: RecordingReadyEvent | RecordingReady, *, bucket: str | None, now: datetime
) -> Effect:
    ready = ready_from_event(event) if isinstance(event, RecordingReadyEvent) else event
    known = await uow.recordings.get_by_daily_id(ready.daily_recording_id)
    if known is not None and known.status == RecordingStatus.READY:
        return Effect(InboxState.APPLIED, known.meeting_id, known.id, "already ready")
    if known is not None and known.status == RecordingStatus.DELETED and known.ready_at is not None:
        return Effect(InboxState.APPLIED, known.meeting_id, known.id, "already deleted")
    if known is not None and known.type != ready.recording_type:
        # The REST API carries no type (it is inferred from tracks); our start knew it.
        ready = msgspec.structs.replace(ready, recording_type=known.type)
    meeting = await (
        uow.meetings.get(known.meeting_id)
        if known is not None
        else meeting_for_room(uow, ready.room_name, ready.start_ts)
    )
    if meeting is None:
        return Effect(InboxState.ORPHAN, detail="no registered meeting matches this recording yet")
    # A meeting without video keeps no cloud recording, and only the audio of raw tracks.
    video_off = not meeting.store_video
    kept_tracks = ready.tracks
    video_keys: tuple[str, ...] = ()
    if video_off and ready.recording_type == "raw-tracks":
        kept_tracks, video_keys = split_video_tracks(ready.tracks)
    cloud_dropped = video_off and ready.recording_type == "cloud"
    fields: dict[str, object] = {
        "status": RecordingStatus.DELETED if cloud_dropped else RecordingStatus.READY,
        "daily_recording_id": ready.daily_recording_id,
        "room_name": ready.room_name,
        "s3_key": ready.s3_key,
        "duration": ready.duration,
        "tracks": kept_tracks,
        "start_ts": ready.start_ts,
        "ready_at": now,
        "audio_only": ready.audio_only,
        "error": "Daily reported no tracks"
        if ready.recording_type == "raw-tracks" and not ready.tracks
        else None,
    }
    if known is not None:
        recording_id = known.id
        # Conditional: a deletion committed since we read the row wins over this event.
        deleted_before = known.status == RecordingStatus.DELETED or not (
            await uow.recordings.set_fields_unless_deleted(known.id, **fields)
        )
    else:
        recording_id, deleted_before = await _finish_session(uow, meeting, ready, fields)
    if deleted_before:
        return await _finish_deleted(uow, meeting, ready, recording_id, fields, now)
    if cloud_dropped:
        recording = await _written(uow, recording_id)
        await queue_deletion(
            uow, recording, DeletionScope.RECORDING, DeletionReason.STORE_VIDEO_OFF, _keys(ready), now
        )
        return Effect(
            InboxState.APPLIED,
            meeting.id,
            recording_id,
            "video is off for this meeting: the cloud recording is deleted",
            deletion_queued=True,
        )
    if video_keys:
        await queue_deletion(
            uow,
            await _written(uow, recording_id),
            DeletionScope.VIDEO,
            DeletionReason.STORE_VIDEO_OFF,
            video_keys,
            now,
        )
    # The callback lists only what remains in the bucket.
    announced = msgspec.structs.replace(ready, tracks=kept_tracks)
    enqueued = await _enqueue_ready_callback(uow, meeting, announced, recording_id, bucket=bucket, now=now)
    return Effect(
        InboxState.APPLIED,
        meeting.id,
        recording_id,
        callback_enqueued=enqueued,
        deletion_queued=bool(video_keys),
    )


async def _written(uow: UnitOfWork, recording_id: str) -> Recording:
    recording = await uow.recordings.get(recording_id)
    assert recording is not None  # written just now, in this transaction
    return recording


def _keys(ready: RecordingReady) -> tuple[str, ...]:
    return recording_object_keys(ready.recording_type, ready.s3_key, ready.tracks)


async def _finish_deleted(
    uow: UnitOfWork,
    meeting: Meeting,
    ready: RecordingReady,
    recording_id: str,
    fields: dict[str, object],
    now: datetime,
) -> Effect:
    """The recording was deleted before Daily finished it: it stays deleted (never available),
    learns what Daily wrote, and every object of it (video included) is deleted now."""
    await uow.recordings.set_fields(recording_id, **(fields | {"status": RecordingStatus.DELETED}))
    if not await uow.deletions.reopen(recording_id, _keys(ready), now):
        recording = await uow.recordings.get(recording_id)
        assert recording is not None
        await queue_deletion(
            uow, recording, DeletionScope.RECORDING, DeletionReason.REQUEST, _keys(ready), now
        )
    return Effect(
        InboxState.APPLIED,
        meeting.id,
        recording_id,
        "deleted before it was ready: its objects are deleted",
        deletion_queued=True,
    )


async def _finish_session(
    uow: UnitOfWork, meeting: Meeting, ready: RecordingReady, fields: dict[str, object]
) -> tuple[str, bool]:
    """Names the waiting session this recording belongs to, or records a new one. Returns the
    recording's id and whether it had been deleted (it stays deleted)."""
    for session in await _sessions_for_ready(uow, meeting, ready):
        deleted = session.status == RecordingStatus.DELETED
        session_fields = fields | {"status": RecordingStatus.DELETED} if deleted else fields
        if await uow.recordings.name_session(session.id, expected=session.status, **session_fields):
            return session.id, deleted
    # Started outside this service (e.g. the browser's cloud start): recognised anyway. No
    # savepoint: a ready row cannot collide with a running session, and a concurrent apply of
    # the same Daily recording (unique id) fails this transaction, so the sweep retries it.
    row = Recording(
        id=new_recording_id(),
        meeting_id=meeting.id,
        type=ready.recording_type,
        started_at=_ts(ready.start_ts),
        **fields,  # type: ignore[arg-type]
    )
    return (await uow.recordings.insert(row, savepoint=False)).id, False


async def _enqueue_ready_callback(
    uow: UnitOfWork,
    meeting: Meeting,
    ready: RecordingReady,
    recording_id: str,
    *,
    bucket: str | None,
    now: datetime,
) -> bool:
    if ready.recording_type == "raw-tracks":
        data = raw_tracks_ready_data(meeting_id=meeting.id, bucket=bucket or "", recording=ready)
        event_type = "recording.raw_tracks_ready"
    else:
        data = cloud_ready_data(meeting_id=meeting.id, bucket=bucket or "", recording=ready)  # type: ignore[assignment]
        event_type = "recording.cloud_ready"
    # Same transaction as the state change: one never exists without the other.
    return await uow.callbacks.enqueue(
        OutgoingCallback(
            id=new_message_id(),
            event_type=event_type,
            meeting_id=meeting.id,
            recording_id=recording_id,
            body=encode_callback(data, now),
            created_at=now,
            traceparent=current_traceparent(),
        )
    )


async def apply_error(uow: UnitOfWork, p: RecordingErrorPayload, now: datetime) -> Effect:
    message = (p.error_msg or "recording error")[:2000]
    if p.instance_id:
        for rec in await uow.recordings.find_by_instance(p.instance_id):
            if rec.status == RecordingStatus.DELETED and rec.ready_at is None:
                # Deleted while recording, and Daily will not finish it: nothing more will come
                # to delete, so its waiting job completes (and Reflector is told).
                await uow.recordings.set_fields(rec.id, error=message)
                await uow.deletions.reopen(rec.id, (), now)
                return Effect(InboxState.APPLIED, rec.meeting_id, rec.id, deletion_queued=True)
            if rec.status in ERRORABLE:
                failed = await uow.recordings.set_fields_unless_deleted(
                    rec.id, status=RecordingStatus.FAILED, error=message
                )
                detail = None if failed else "deleted meanwhile: stays deleted"
                return Effect(InboxState.APPLIED, rec.meeting_id, rec.id, detail)
    meeting: Meeting | None = None
    rec_type: RecordingType | None = None
    if p.instance_id:
        resolved = await meeting_for_instance(uow, p.instance_id)
        if resolved is not None:
            meeting, rec_type = resolved
    if meeting is None and p.room_name:
        meeting = await meeting_for_room(uow, p.room_name, p.timestamp_s or now.timestamp())
        if meeting is not None:
            rec_type = type_of_instance(meeting.id, p.instance_id)
    if meeting is None:
        return Effect(InboxState.ORPHAN, detail="no registered meeting matches this error yet")
    rec_type = rec_type or "cloud"
    active = await uow.recordings.find_active(meeting.id, rec_type)
    if active is not None:
        await uow.recordings.set_fields_unless_deleted(
            active.id, status=RecordingStatus.FAILED, error=message
        )
        return Effect(InboxState.APPLIED, meeting.id, active.id)
    row = await uow.recordings.insert(
        Recording(
            id=new_recording_id(),
            meeting_id=meeting.id,
            type=rec_type,
            instance_id=p.instance_id,
            status=RecordingStatus.FAILED,
            room_name=meeting.room_name,
            error=message,
        )
    )
    return Effect(InboxState.APPLIED, meeting.id, row.id)


async def apply_meeting_ended(uow: UnitOfWork, p: MeetingPayload) -> Effect:
    """Everyone left, so Daily stops the recordings: the next join starts a new session."""
    meeting = await meeting_for_room(uow, p.room, p.start_ts)
    if meeting is None:
        return Effect(InboxState.IGNORED, detail="no registered meeting for this room and time")
    for rec in await uow.recordings.list_for_meeting(meeting.id):
        if rec.status == RecordingStatus.RECORDING and (p.end_ts is None or began_before(rec, p.end_ts)):
            await uow.recordings.set_fields_unless_deleted(rec.id, status=RecordingStatus.FINISHING)
    return Effect(InboxState.APPLIED, meeting.id)


# Daily's reconnect window (up to 20 s before meeting.ended) means nobody joined within seconds
# after `end_ts`: a session starting that close to it began before the end.
UNNAMED_START_SLACK_S = 2.0


def began_before(rec: Recording, end_ts: float) -> bool:
    """Whether a session began before a meeting's `end_ts` (Daily's clock, to 0.1 s or whole
    seconds). Daily's own `start_ts` (whole seconds) when Daily named the session; otherwise our
    confirmation time (microseconds, our clock, after Daily's start by the API round trip),
    within UNNAMED_START_SLACK_S."""
    if rec.start_ts is not None:
        return rec.start_ts <= end_ts
    if rec.started_at is None:
        return True
    return rec.started_at.timestamp() <= end_ts + UNNAMED_START_SLACK_S
