"""Deleting recordings (contract §5): a recording is `deleted` at once, in the transaction that
queues the removal of its objects; the deletion loop removes them until S3 confirms, and only
then is Reflector told (recording.deleted). Requests, retention and meetings without video
all go this way."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from recorder_service.adapters.db.unit_of_work import Database, UnitOfWork
from recorder_service.core.callbacks import RecordingDeletedData, encode_callback, new_message_id
from recorder_service.core.deletions import (
    ClaimedDeletion,
    DeletionReason,
    DeletionScope,
    NewDeletion,
    new_deletion_id,
    recording_object_keys,
)
from recorder_service.core.models import OutgoingCallback, Recording, RecordingType
from recorder_service.core.retry_policy import next_attempt_at
from recorder_service.core.statuses import DeletionState, RecordingStatus
from recorder_service.errors import DailyError, MeetingNotFound, RecordingNotFound
from recorder_service.telemetry import Telemetry, current_traceparent, disabled_telemetry

log = logging.getLogger(__name__)

RECORDING_DELETED = "recording.deleted"
# Statuses whose objects are all known: their job is due at once. The others are still being
# recorded: their job waits for the ready event, which brings the keys.
_SETTLED = (RecordingStatus.READY, RecordingStatus.FAILED)
# A compare-and-set that keeps losing means the row changes under us on every read.
_MARK_ATTEMPTS = 5


class ObjectRemover(Protocol):
    async def delete_objects(self, keys: Iterable[str]) -> int: ...


class DailyRecordingDeleter(Protocol):
    async def delete_recording(self, recording_id: str) -> None: ...


# ---------------------------------------------------------------------------------------------- requests


async def delete_recordings(
    db: Database,
    meeting_id: str,
    *,
    rec_type: RecordingType | None = None,
    selector: str | None = None,
    reason: DeletionReason,
    now: datetime,
    telemetry: Telemetry | None = None,
) -> list[str]:
    """Deletes the meeting's recordings matching the filters and returns their ids, the ones
    deleted earlier included: a repeated request answers the same ids and changes nothing.
    `selector` is our recording id or Daily's; an unknown one is RecordingNotFound."""
    marked: list[Recording] = []
    async with db.transaction() as uow:
        if await uow.meetings.lock(meeting_id) is None:
            raise MeetingNotFound(f"meeting {meeting_id} is not registered")
        chosen = [
            r
            for r in await uow.recordings.list_for_meeting(meeting_id)
            if (rec_type is None or r.type == rec_type)
            and (selector is None or selector in (r.id, r.daily_recording_id))
        ]
        if selector is not None and not chosen:
            raise RecordingNotFound(f"meeting {meeting_id} has no recording {selector}")
        for recording in chosen:
            if await mark_deleted(uow, recording, reason, now) is not None:
                marked.append(recording)
    instruments = (telemetry or disabled_telemetry()).instruments
    for recording in marked:
        instruments.count_deletion(reason.value, "requested")
        log.info(
            "recording %s deleted (%s); its objects are removed in the background",
            recording.type,
            reason.value,
            extra={"meeting_id": meeting_id, "recording_id": recording.id, "reason": reason.value},
        )
    return [r.id for r in chosen]


async def mark_deleted(
    uow: UnitOfWork, recording: Recording, reason: DeletionReason, now: datetime
) -> Recording | None:
    """The recording becomes `deleted` and its deletion job is queued, in `uow`'s transaction.
    None when it was deleted already. Compare-and-set on the status: a ready event applied
    meanwhile is seen (and its keys deleted), never overwritten."""
    current: Recording | None = recording
    for _ in range(_MARK_ATTEMPTS):
        if current is None or current.status == RecordingStatus.DELETED:
            return None
        deleted = await uow.recordings.mark_deleted(current.id, expected=current.status)
        if deleted is not None:
            settled = current.status in _SETTLED
            keys = recording_object_keys(deleted.type, deleted.s3_key, deleted.tracks) if settled else ()
            await queue_deletion(
                uow,
                deleted,
                DeletionScope.RECORDING,
                reason,
                keys,
                now,
                state=DeletionState.PENDING if settled else DeletionState.WAITING,
            )
            return deleted
        current = await uow.recordings.get(current.id)
    raise RuntimeError(f"recording {recording.id} kept changing while being deleted")


async def queue_deletion(
    uow: UnitOfWork,
    recording: Recording,
    scope: DeletionScope,
    reason: DeletionReason,
    keys: tuple[str, ...],
    now: datetime,
    *,
    state: DeletionState = DeletionState.PENDING,
) -> bool:
    """Adds the job of (recording, scope), unless it exists. False then."""
    return await uow.deletions.add(
        NewDeletion(
            id=new_deletion_id(),
            recording_id=recording.id,
            meeting_id=recording.meeting_id,
            scope=scope,
            reason=reason,
            state=state,
            keys=keys,
            created_at=now,
        )
    )


# ---------------------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionPolicy:
    cloud_days: float | None
    raw_tracks_days: float | None
    batch_size: int = 100


async def delete_expired(
    db: Database, policy: RetentionPolicy, now: datetime, *, telemetry: Telemetry | None = None
) -> int:
    """Deletes the ready recordings older than their type's retention (counted from ready_at),
    each like a request with reason `retention`. Returns how many were deleted."""
    deleted = 0
    limits: tuple[tuple[RecordingType, float | None], ...] = (
        ("cloud", policy.cloud_days),
        ("raw-tracks", policy.raw_tracks_days),
    )
    for rec_type, days in limits:
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        seen: set[str] = set()
        while True:
            async with db.transaction() as uow:
                expired = [
                    r
                    for r in await uow.recordings.ready_before(rec_type, cutoff, policy.batch_size)
                    if r.id not in seen
                ]
            if not expired:
                break
            for recording in expired:
                seen.add(recording.id)
                try:
                    await delete_recordings(
                        db,
                        recording.meeting_id,
                        selector=recording.id,
                        reason=DeletionReason.RETENTION,
                        now=now,
                        telemetry=telemetry,
                    )
                except (MeetingNotFound, RecordingNotFound):
                    continue  # a recording without its meeting: nothing to match it by
                deleted += 1
    return deleted


# ---------------------------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class DeletionDeps:
    db: Database
    storage: ObjectRemover
    daily: DailyRecordingDeleter
    now: Callable[[], datetime]
    retry_delays_s: tuple[float, ...]
    lease: timedelta
    batch_size: int
    wake_outbox: Callable[[], None]
    telemetry: Telemetry = field(default_factory=disabled_telemetry)


def retry_at(deps: DeletionDeps, failed_attempts: int, now: datetime) -> datetime:
    """Never gives up: after the schedule, its last delay repeats (with jitter)."""
    delays = deps.retry_delays_s
    due = next_attempt_at(min(failed_attempts, len(delays)), delays, now)
    assert due is not None  # within the schedule by construction
    return due


async def claim_due(deps: DeletionDeps, owner: str) -> list[ClaimedDeletion]:
    async with deps.db.transaction() as uow:
        return await uow.deletions.claim_due(
            now=deps.now(), limit=deps.batch_size, owner=owner, lease=deps.lease
        )


async def release(deps: DeletionDeps, job: ClaimedDeletion, owner: str) -> None:
    async with deps.db.transaction() as uow:
        await uow.deletions.release(job.id, owner)


async def carry_out(deps: DeletionDeps, job: ClaimedDeletion, owner: str) -> bool:
    """One attempt at a job: remove its objects; when S3 confirmed them all, the job is done and
    (for a whole recording) Reflector's recording.deleted callback is queued, then Daily's copy
    is deleted, best effort. True when the job completed."""
    extra = {"meeting_id": job.meeting_id, "recording_id": job.recording_id, "reason": job.reason.value}
    instruments = deps.telemetry.instruments
    with deps.telemetry.tracer.start_as_current_span(
        "deletion.attempt",
        attributes={
            "deletion.id": job.id,
            "deletion.scope": job.scope.value,
            "deletion.reason": job.reason.value,
            "deletion.objects": len(job.keys),
            "deletion.attempt": job.attempts + 1,
        },
    ):
        try:
            await deps.storage.delete_objects(job.keys)
        except Exception as exc:
            now = deps.now()
            due = retry_at(deps, job.attempts + 1, now)
            async with deps.db.transaction() as uow:
                kept = await uow.deletions.record_failure(
                    job.id, owner=owner, error=str(exc), next_attempt_at=due
                )
            if kept:
                instruments.count_deletion(job.reason.value, "retried")
                log.warning(
                    "deleting %d objects of a recording failed (attempt %d: %s); next try at %s",
                    len(job.keys),
                    job.attempts + 1,
                    exc,
                    due.isoformat(),
                    extra=extra,
                )
            return False
        now = deps.now()
        recording: Recording | None = None
        async with deps.db.transaction() as uow:
            done = await uow.deletions.complete(job.id, owner=owner, now=now)
            if done and job.scope == DeletionScope.RECORDING:
                recording = await uow.recordings.get(job.recording_id)
                await _announce(uow, recording, job, now)
    if not done:
        log.warning("lease on a deletion lost before it completed; another attempt follows", extra=extra)
        return False
    instruments.count_deletion(job.reason.value, "completed")
    log.info(
        "%d objects of a recording deleted from the bucket (%s)", len(job.keys), job.scope.value, extra=extra
    )
    deps.wake_outbox()
    if recording is not None and recording.daily_recording_id is not None:
        await _delete_at_daily(deps, job, recording.daily_recording_id, extra)
    return True


async def _announce(
    uow: UnitOfWork, recording: Recording | None, job: ClaimedDeletion, now: datetime
) -> None:
    """recording.deleted, once per recording (the outbox's unique key). Only for recordings Daily
    named: Reflector knows recordings by Daily's id, and was never told of the others."""
    if recording is None or recording.daily_recording_id is None:
        return
    data = RecordingDeletedData(
        meeting_id=recording.meeting_id,
        recording_id=recording.daily_recording_id,
        type=recording.type,
        reason=job.reason.value,
    )
    await uow.callbacks.enqueue(
        OutgoingCallback(
            id=new_message_id(),
            event_type=RECORDING_DELETED,
            meeting_id=recording.meeting_id,
            recording_id=recording.id,
            body=encode_callback(data, now),
            created_at=now,
            traceparent=current_traceparent(),
        )
    )


async def _delete_at_daily(
    deps: DeletionDeps, job: ClaimedDeletion, daily_recording_id: str, extra: dict[str, str]
) -> None:
    """Daily's reference to the recording (its objects are ours, already gone). Best effort:
    tried once, after the bucket is clean, and its failure changes nothing else."""
    try:
        await deps.daily.delete_recording(daily_recording_id)
        outcome = "deleted"
    except DailyError as exc:
        outcome = "not_found" if exc.status_code == 404 else "failed"
        if outcome == "failed":
            log.warning("could not delete the recording at Daily (kept there): %s", exc, extra=extra)
    except Exception:
        outcome = "failed"
        log.exception("could not delete the recording at Daily (kept there)", extra=extra)
    try:
        async with deps.db.transaction() as uow:
            await uow.deletions.set_daily_outcome(job.id, outcome)
    except Exception:
        log.debug("could not record Daily's deletion outcome", exc_info=True, extra=extra)


async def pending_backlog(db: Database) -> tuple[int, datetime | None]:
    async with db.transaction() as uow:
        return await uow.deletions.pending_stats()


async def next_due_at(db: Database) -> datetime | None:
    async with db.transaction() as uow:
        return await uow.deletions.next_due_at()
