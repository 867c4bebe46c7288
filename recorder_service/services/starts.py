"""Join-time recording start: one Daily start per meeting, type and recording session.

Two guards: a lock per (meeting, type) serialises callers on every replica, and the
unique "one active recording" index makes the database the final arbiter. Daily itself
answers "has an active stream" for a running instanceId, a third line of defence."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec

from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.adapters.single_flight import SingleFlight
from recorder_service.adapters.start_budget import BudgetPolicy, LocalBudgetBackend, StartBudget
from recorder_service.core.models import (
    Meeting,
    Recording,
    RecordingType,
    instance_id_for,
    new_recording_id,
)
from recorder_service.core.ports import Coordinator, DailyRecordingStarter
from recorder_service.core.statuses import RecordingStatus
from recorder_service.errors import (
    CloudStartedByClient,
    DailyError,
    LockWaitTimeout,
    MeetingNotFound,
    MeetingNotRecordable,
    RecorderError,
    RecordingAlreadyActive,
    RoomNotHosting,
    StartBudgetExhausted,
    VideoOff,
)
from recorder_service.services.start_calls import NOT_HOSTING_DETAIL, not_hosting_retry_after, start_at_daily
from recorder_service.telemetry import Telemetry, disabled_telemetry

DAILY_DEFAULT_MAX_DURATION_S = 3 * 3600

# Anonymous callers read these (contract §3/§4): no room name (a join URL for public rooms), and
# nothing that tells an unregistered meeting from one that is not recorded beyond the status code.
NOT_FOUND_DETAIL = "no recording can be started for this meeting"
NOT_RECORDABLE_DETAIL = "no recording can be started for this meeting now"


class StartOutcome(msgspec.Struct, frozen=True):
    status: Literal["started", "already_active"]
    type: RecordingType
    instance_id: str
    meeting_id: str


class _Attempt(msgspec.Struct, frozen=True):
    """What the last lock holder learned, so the callers queued behind it share its answer."""

    at: float
    kind: Literal["active", "not_hosting", "daily_error", "budget"]
    message: str
    retry_after_s: int = 1
    status_code: int | None = None


@dataclass(frozen=True)
class StartPolicy:
    cloud_start: Literal["client", "server"]
    not_hosting_budget_s: float
    not_hosting_delay_s: float
    lock_ttl_s: float
    lock_wait_s: float


@dataclass(frozen=True)
class StartDeps:
    db: Database
    coordinator: Coordinator
    daily: DailyRecordingStarter
    policy: StartPolicy
    now: Callable[[], datetime]
    telemetry: Telemetry = field(default_factory=disabled_telemetry)
    # Join-time starts share one lock wait per (meeting, type) in this process.
    in_flight: SingleFlight[StartOutcome] = field(default_factory=SingleFlight)
    # Daily's start calls of the whole deployment (resources.py gives the shared one).
    budget: StartBudget = field(
        default_factory=lambda: StartBudget(
            LocalBudgetBackend(),
            BudgetPolicy(calls=5, window_s=5, wait_s=20, meeting_interval_s=1, hold_s=30),
        )
    )


def max_duration_for(meeting: Meeting, now: datetime) -> int:
    """Covers the meeting's remaining time, never below Daily's 3-hour default."""
    if meeting.end_date is None:
        return DAILY_DEFAULT_MAX_DURATION_S
    remaining = math.ceil((meeting.end_date - now).total_seconds())
    return max(DAILY_DEFAULT_MAX_DURATION_S, remaining)


def check_recordable(meeting: Meeting | None, meeting_id: str, now: datetime) -> Meeting:
    if meeting is None:
        raise MeetingNotFound(NOT_FOUND_DETAIL)
    if meeting.recording_type != "cloud":  # not recorded by Daily's cloud
        raise MeetingNotRecordable(NOT_RECORDABLE_DETAIL)
    if meeting.end_date is not None and meeting.end_date <= now:  # ended
        raise MeetingNotRecordable(NOT_RECORDABLE_DETAIL)
    return meeting


def check_video_allowed(meeting: Meeting, rec_type: RecordingType) -> None:
    """store_video: false means no cloud recording at all (contract §4)."""
    if rec_type == "cloud" and not meeting.store_video:
        raise VideoOff(f"video is off for this meeting ({meeting.id} was registered with store_video: false)")


async def start_recording(deps: StartDeps, meeting_id: str, rec_type: RecordingType) -> StartOutcome:
    telemetry = deps.telemetry
    attributes = {"recorder.meeting_id": meeting_id, "recorder.recording_type": rec_type}
    with telemetry.tracer.start_as_current_span("recording.start", attributes=attributes) as span:
        try:
            outcome = await _start_recording(deps, meeting_id, rec_type)
        except RecorderError as exc:
            telemetry.instruments.count_start(rec_type, _failure_outcome(exc))
            raise
        telemetry.instruments.count_start(rec_type, outcome.status)
        span.set_attribute("recorder.outcome", outcome.status)
        return outcome


def _failure_outcome(exc: RecorderError) -> str:
    if isinstance(exc, RoomNotHosting):
        return "not_hosting"
    if isinstance(exc, StartBudgetExhausted):
        return "budget"
    if isinstance(exc, DailyError):
        return "failed"
    return "rejected"  # not registered, not recordable, cloud started by the client


async def _start_recording(deps: StartDeps, meeting_id: str, rec_type: RecordingType) -> StartOutcome:
    if rec_type == "cloud" and deps.policy.cloud_start == "client":
        raise CloudStartedByClient("cloud recordings are started by the client (RECORDER_CLOUD_START=client)")
    key = f"start:{meeting_id}:{rec_type}"
    flight = deps.in_flight.current(key)
    if flight is not None:
        with deps.telemetry.tracer.start_as_current_span("start.join_in_flight"):
            shared = await _shared_answer(flight)
        if shared is not None:
            return shared
    with deps.in_flight.leading(key) as flight:
        outcome = await _start_or_wait(deps, meeting_id, rec_type, key)
        flight.set_result(outcome)
        return outcome


async def _shared_answer(flight: asyncio.Future[StartOutcome]) -> StartOutcome | None:
    """The in-flight start's answer as ours: arrived while it ran, we would have waited for it
    too. Running → already_active; Daily refused → the same error. None: try ourselves."""
    try:
        outcome = await asyncio.shield(flight)
    except RoomNotHosting as exc:
        raise RoomNotHosting(str(exc), retry_after_s=exc.retry_after_s) from exc
    except StartBudgetExhausted as exc:
        raise StartBudgetExhausted(exc.retry_after_s) from exc
    except DailyError as exc:
        raise DailyError(str(exc), status_code=exc.status_code) from exc
    except Exception:
        return None
    return msgspec.structs.replace(outcome, status="already_active")


async def _start_or_wait(deps: StartDeps, meeting_id: str, rec_type: RecordingType, key: str) -> StartOutcome:
    tracer = deps.telemetry.tracer
    async with deps.db.transaction() as uow:
        meeting = check_recordable(await uow.meetings.get(meeting_id), meeting_id, deps.now())
    check_video_allowed(meeting, rec_type)
    instance_id = instance_id_for(meeting_id, rec_type)
    arrived_at = time.time()
    async with contextlib.AsyncExitStack() as held:
        with tracer.start_as_current_span("start.lock_wait"):
            settled = await _wait_for_lock(deps, held, key, arrived_at)
        if settled:
            return StartOutcome("already_active", rec_type, instance_id, meeting_id)
        await _replay_recent_failure(deps, key, arrived_at)
        if await deps.budget.not_hosting_recently(meeting.room_name):
            # Daily said so a moment ago, to some caller on some replica: do not ask again yet.
            retry_after = not_hosting_retry_after(deps.policy.not_hosting_delay_s)
            raise RoomNotHosting(NOT_HOSTING_DETAIL, retry_after_s=retry_after)
        with tracer.start_as_current_span("start.claim"):
            async with deps.db.transaction() as uow:
                active = await uow.recordings.find_active(meeting_id, rec_type)
                if active is not None and active.status == RecordingStatus.RECORDING:
                    return StartOutcome("already_active", rec_type, instance_id, meeting_id)
                if active is not None:
                    # A "starting" row seen under the lock was left by a holder that died
                    # mid-start: take it over (Daily dedups by instanceId if it did start).
                    claim_id = active.id
                else:
                    try:
                        claim = await uow.recordings.insert(
                            Recording(
                                id=new_recording_id(),
                                meeting_id=meeting_id,
                                type=rec_type,
                                instance_id=instance_id,
                                status=RecordingStatus.STARTING,
                                room_name=meeting.room_name,
                            )
                        )
                    except RecordingAlreadyActive:
                        # Only possible if the lock expired under a slow holder.
                        return await _await_other_claim(deps, meeting_id, rec_type, instance_id)
                    claim_id = claim.id
        return await _start_at_daily(deps, meeting, rec_type, instance_id, claim_id, key)


# Queued callers look at the holder's published outcome this often while they wait.
WAIT_SLICE_S = 0.05


async def _wait_for_lock(
    deps: StartDeps, held: contextlib.AsyncExitStack, key: str, arrived_at: float
) -> bool:
    """Takes the lock, or returns True when the holder published, after we arrived, that the
    recording is running: a herd of joiners then answers within one slice of the start, instead
    of taking the lock one after another. Each slice costs one lock attempt and one read."""
    deadline = time.monotonic() + deps.policy.lock_wait_s
    while True:
        try:
            await held.enter_async_context(deps.coordinator.hold(key, ttl_s=deps.policy.lock_ttl_s, wait_s=0))
            return False
        except LockWaitTimeout:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(WAIT_SLICE_S * random.uniform(0.5, 1.5))  # jitter spreads the herd
        raw = await deps.coordinator.get_outcome(key)
        if raw is None:
            continue
        published = msgspec.json.decode(raw, type=_Attempt)
        if published.at < arrived_at:
            continue
        if published.kind == "active":
            return True
        await _replay_recent_failure(deps, key, arrived_at)


async def _replay_recent_failure(deps: StartDeps, key: str, arrived_at: float) -> None:
    raw = await deps.coordinator.get_outcome(key)
    if raw is None:
        return
    failure = msgspec.json.decode(raw, type=_Attempt)
    if failure.at < arrived_at or failure.kind == "active":
        return  # older than our request: try again ourselves
    if failure.kind == "not_hosting":
        raise RoomNotHosting(failure.message, retry_after_s=failure.retry_after_s)
    if failure.kind == "budget":
        raise StartBudgetExhausted(failure.retry_after_s)
    raise DailyError(failure.message, status_code=failure.status_code)


async def _start_at_daily(
    deps: StartDeps, meeting: Meeting, rec_type: RecordingType, instance_id: str, claim_id: str, key: str
) -> StartOutcome:
    try:
        status = await start_at_daily(
            deps.daily,
            deps.budget,
            deps.telemetry,
            meeting=meeting,
            rec_type=rec_type,
            instance_id=instance_id,
            max_duration_s=max_duration_for(meeting, deps.now()),
            not_hosting_budget_s=deps.policy.not_hosting_budget_s,
            not_hosting_delay_s=deps.policy.not_hosting_delay_s,
        )
    except RoomNotHosting as exc:
        await _fail_not_hosting(deps, claim_id, key, exc.retry_after_s)
        raise
    except StartBudgetExhausted as exc:
        await _fail(deps, claim_id, key, _Attempt(time.time(), "budget", str(exc), exc.retry_after_s))
        raise
    except DailyError as exc:  # already without the room name
        await _fail(
            deps, claim_id, key, _Attempt(time.time(), "daily_error", str(exc), status_code=exc.status_code)
        )
        raise
    async with deps.db.transaction() as uow:
        # Conditional: a recording.started webhook may already have moved the claim on.
        await uow.recordings.confirm_claim(claim_id, started_at=deps.now())
    # Only callers that arrived before this moment trust it (see _wait_for_lock).
    await deps.coordinator.put_outcome(
        key,
        msgspec.json.encode(_Attempt(time.time(), "active", "recording")),
        ttl_s=deps.policy.lock_wait_s + 5,
    )
    return StartOutcome(status, rec_type, instance_id, meeting.id)


async def _fail_not_hosting(deps: StartDeps, claim_id: str, key: str, retry_after_s: int) -> None:
    await _fail(deps, claim_id, key, _Attempt(time.time(), "not_hosting", NOT_HOSTING_DETAIL, retry_after_s))


async def _fail(deps: StartDeps, claim_id: str, key: str, failure: _Attempt) -> None:
    """Releases the claim so the next caller can try, and tells the queued callers why."""
    async with deps.db.transaction() as uow:
        await uow.recordings.delete_claim(claim_id)
    await deps.coordinator.put_outcome(key, msgspec.json.encode(failure), ttl_s=deps.policy.lock_wait_s + 5)


async def _await_other_claim(
    deps: StartDeps, meeting_id: str, rec_type: RecordingType, instance_id: str
) -> StartOutcome:
    deadline = time.monotonic() + deps.policy.lock_wait_s
    while time.monotonic() < deadline:
        async with deps.db.transaction() as uow:
            active = await uow.recordings.find_active(meeting_id, rec_type)
        if active is None:
            break
        if active.status == RecordingStatus.RECORDING:
            return StartOutcome("already_active", rec_type, instance_id, meeting_id)
        await asyncio.sleep(0.1)
    raise DailyError("another start of this recording did not finish in time; retry")
