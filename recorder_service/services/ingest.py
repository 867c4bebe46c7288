"""Daily webhook ingest: verify, store durably, then apply once.

Daily delivers at least once and may disable the endpoint after a few failures, so every
correctly signed request is stored (keyed by Daily's event id) and acknowledged, whatever
its content; effects are applied afterwards, idempotently (by event id and recording id)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from recorder_service.adapters.daily.events import (
    MeetingEndedEvent,
    RecordingErrorEvent,
    RecordingReadyEvent,
    RecordingStartedEvent,
    decode_found_recording,
    is_verification_request,
    parse_event,
)
from recorder_service.adapters.db.inbox import InboxOutcome, InboxRecord, LockedEvent
from recorder_service.adapters.db.inbox_writer import InboxWriter
from recorder_service.adapters.db.unit_of_work import Database, UnitOfWork
from recorder_service.core.callbacks import encode_daily_event, new_message_id, relay_subject_id
from recorder_service.core.daily_signature import DailyWebhookVerifier
from recorder_service.core.models import OutgoingCallback, RecordingReady
from recorder_service.core.ports import ApplyScheduler
from recorder_service.core.statuses import APPLICABLE_STATES, InboxState, RecordingStatus
from recorder_service.errors import EventParseError, InvalidSignature, WebhooksNotConfigured
from recorder_service.services.effects import (
    Effect,
    apply_error,
    apply_meeting_ended,
    apply_ready,
    apply_started,
)
from recorder_service.telemetry import (
    Telemetry,
    annotate_current_span,
    current_traceparent,
    disabled_telemetry,
    parent_context,
)

log = logging.getLogger(__name__)

# A recording in one of these with a ready_at has had its ready event: nothing to feed.
_SETTLED = (RecordingStatus.READY, RecordingStatus.DELETED)

# Recordings found by listing Daily's recordings are stored as this kind of inbox row, so a
# recording seen by both a webhook and the reconciler goes through one path, with one effect.
RECONCILER_SOURCE = "reconciler"
DAILY_EVENT = "daily.event"

# Events whose effects we apply; the others are stored and marked "ignored".
_ACTIONABLE = (RecordingStartedEvent, RecordingReadyEvent, RecordingErrorEvent, MeetingEndedEvent)


class WebhookReceipt(msgspec.Struct, frozen=True):
    status: Literal["stored", "duplicate", "verification"]
    event_id: str | None = None
    state: InboxState | None = None


@dataclass(frozen=True)
class IngestDeps:
    db: Database
    verifier: DailyWebhookVerifier | None
    bucket: str | None
    now: Callable[[], datetime]
    wake_outbox: Callable[[], None]
    writer: InboxWriter
    apply_queue: ApplyScheduler
    telemetry: Telemetry = field(default_factory=disabled_telemetry)
    # Set when an apply queued a deletion job (a meeting without video, a deleted recording
    # finishing), so the deletion loop runs it without waiting a poll tick.
    wake_deletions: Callable[[], None] = lambda: None
    # RECORDER_FORWARD_DAILY_EVENTS: Daily event types relayed to Reflector as daily.event callbacks.
    relayed_event_types: frozenset[str] = frozenset()


class _Head(msgspec.Struct):
    id: object = None
    type: object = None


# Column sizes of the inbox; longer values are kept in the stored body, not in these columns.
_MAX_ID = 255
_MAX_TYPE = 64
_MAX_ROOM = 255
# JSON's escape for NUL: PostgreSQL text cannot hold it, and no real Daily event carries one.
_JSON_NUL = b"\\u0000"


def _storable_id(event_id: str) -> str:
    """Daily's id when it fits the column; otherwise a digest of it (still stable on redelivery)."""
    if len(event_id) <= _MAX_ID and "\x00" not in event_id:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def _storable_text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return value.replace("\x00", "")[:limit] or None


def inbox_row_for(
    body: bytes,
    *,
    now: datetime,
    source: str = "webhook",
    traceparent: str | None = None,
    relayed: frozenset[str] = frozenset(),
) -> InboxRecord:
    """The row to store for a signed body, with a state saying what we could make of it."""
    try:
        event = parse_event(body)
        if _JSON_NUL in body:
            raise EventParseError("contains NUL characters")
        room = _room_of(event)
        if room is not None and len(room) > _MAX_ROOM:
            raise EventParseError("room name longer than any Daily room name")
    except EventParseError as exc:
        event_id, event_type = _lenient_head(body)
        return InboxRecord(
            id=event_id,
            event_type=event_type,
            state=InboxState.UNPARSEABLE,
            body=body,
            source=source,
            detail=_storable_text(exc.reason, 500),
            received_at=now,
            traceparent=traceparent,
        )
    # Relayed types are applied too: the apply queues their daily.event callback.
    actionable = isinstance(event, _ACTIONABLE) or event.event_type in relayed
    return InboxRecord(
        id=_storable_id(event.id),
        event_type=_storable_text(event.event_type, _MAX_TYPE),
        state=InboxState.PENDING if actionable else InboxState.IGNORED,
        body=body,
        source=source,
        room_name=room,
        received_at=now,
        traceparent=traceparent,
        detail=None if actionable else "event type not acted upon",
    )


def _lenient_head(body: bytes) -> tuple[str, str | None]:
    """Keeps a redelivered unparseable event deduplicated by its own id when it has one."""
    try:
        head = msgspec.json.decode(body, type=_Head)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        head = _Head()
    event_id = _storable_id(head.id) if isinstance(head.id, str) and head.id else None
    event_type = _storable_text(head.type, _MAX_TYPE) if isinstance(head.type, str) else None
    return event_id or "sha256:" + hashlib.sha256(body).hexdigest(), event_type


def _room_of(event: object) -> str | None:
    if isinstance(event, RecordingReadyEvent | RecordingErrorEvent | RecordingStartedEvent):
        return event.payload.room_name
    if isinstance(event, MeetingEndedEvent):
        return event.payload.room
    return None


async def receive_webhook(
    deps: IngestDeps,
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    traceparent: str | None = None,
) -> WebhookReceipt:
    with deps.apply_queue.delivery():
        return await _receive(deps, body, timestamp=timestamp, signature=signature, traceparent=traceparent)


async def _receive(
    deps: IngestDeps, body: bytes, *, timestamp: str | None, signature: str | None, traceparent: str | None
) -> WebhookReceipt:
    tracer = deps.telemetry.tracer
    count = deps.telemetry.instruments.count_webhook
    if is_verification_request(body):
        count("test", "verification")
        return WebhookReceipt("verification")
    if deps.verifier is None:
        count(None, "not_configured")
        raise WebhooksNotConfigured("webhooks are not accepted: RECORDER_DAILY_WEBHOOK_SECRETS is not set")
    # An attribute, not a span of its own: the HMAC takes a few µs, a span three times that.
    valid = deps.verifier.verify(timestamp, signature, body)
    annotate_current_span("webhook.signature_valid", valid)
    if not valid:
        count(None, "invalid_signature")
        raise InvalidSignature("invalid or missing webhook signature")
    # The active span's context (it continues the sender's traceparent when there is one):
    # work resumed later from the stored row joins this trace.
    row = inbox_row_for(
        body,
        now=deps.now(),
        traceparent=current_traceparent() or traceparent,
        relayed=deps.relayed_event_types,
    )
    attributes = {"daily.event_id": row.id, "daily.event_type": row.event_type or "unknown"}
    with tracer.start_as_current_span("webhook.store", attributes=attributes) as span:
        try:
            stored = await deps.writer.store(row)
        except Exception:
            count(row.event_type, "store_failed")
            raise
        span.set_attribute("webhook.duplicate", not stored)
    if not stored:
        count(row.event_type, "duplicate")
        return WebhookReceipt("duplicate", row.id)
    state = row.state
    if state == InboxState.PENDING:
        # Stored: whatever happens next, the 200 is owed. Apply now only when alone.
        if deps.apply_queue.should_apply_inline():
            state = await apply_safely(deps, row.id) or InboxState.PENDING
        else:
            deps.apply_queue.submit(row.id)  # when full, the inbox sweep applies it
    count(row.event_type, state)
    return WebhookReceipt("stored", row.id, state)


async def apply_safely(deps: IngestDeps, event_id: str) -> InboxState | None:
    """Applies now if possible; on failure the event stays pending for the sweep."""
    try:
        return await apply_event(deps, event_id)
    except Exception:
        log.exception("applying event failed; left pending for the sweep", extra={"event_id": event_id})
        return InboxState.PENDING


async def apply_event(deps: IngestDeps, event_id: str) -> InboxState | None:
    """Applies a stored event once. Returns its resulting state (None: no such event)."""
    async with deps.db.transaction() as uow:
        effect = await _apply_locked(uow, deps, event_id)
    _wake(deps, [effect])
    return effect.state if isinstance(effect, Effect) else effect


async def apply_events(deps: IngestDeps, event_ids: Sequence[str]) -> int:
    """Applies several stored events in one transaction (a backlog: one BEGIN and COMMIT for
    all; on PostgreSQL the events are locked in one statement and their outcomes written in one
    round trip). If any of them fails, none is kept and each is applied on its own instead, so
    one bad event cannot hold the others back. Returns how many were applied."""
    unique = list(dict.fromkeys(event_ids))  # an id queued twice is applied once
    if len(unique) == 1:
        return int(await apply_safely(deps, unique[0]) == InboxState.APPLIED)
    try:
        async with deps.db.transaction() as uow:
            locked = await uow.inbox.lock_many(unique)
            effects: list[Effect | InboxState | None] = []
            outcomes: list[InboxOutcome] = []
            for event_id in unique:
                effect, outcome = await _apply_row(uow, deps, locked.get(event_id))
                effects.append(effect)
                if outcome is not None:
                    outcomes.append(outcome)
            await uow.inbox.finish_many(outcomes)
    except Exception as exc:
        log.info("a batch of %d applies failed (%s); applying them one by one", len(unique), exc)
        return sum([int(await apply_safely(deps, e) == InboxState.APPLIED) for e in unique])
    _wake(deps, effects)
    return sum(1 for e in effects if isinstance(e, Effect) and e.state == InboxState.APPLIED)


def _wake(deps: IngestDeps, effects: Sequence[Effect | InboxState | None]) -> None:
    """After the commit: the loops that have new work are told at once."""
    applied = [e for e in effects if isinstance(e, Effect)]
    if any(e.callback_enqueued for e in applied):
        deps.wake_outbox()
    if any(e.deletion_queued for e in applied):
        deps.wake_deletions()


async def _apply_locked(uow: UnitOfWork, deps: IngestDeps, event_id: str) -> Effect | InboxState | None:
    """The effect of one event, in the caller's transaction; the stored state instead when the
    event is not (or no longer) applicable, None when there is no such event."""
    effect, outcome = await _apply_row(uow, deps, await uow.inbox.lock(event_id))
    if outcome is not None:
        await uow.inbox.finish(outcome)
    return effect


async def _apply_row(
    uow: UnitOfWork, deps: IngestDeps, row: LockedEvent | None
) -> tuple[Effect | InboxState | None, InboxOutcome | None]:
    """The effect of one locked event and the outcome to record for it (None: nothing to
    record, the event being absent or no longer applicable)."""
    if row is None:
        return None, None
    if row.state not in APPLICABLE_STATES:
        return row.state, None
    # In the webhook's request this nests under it; in the sweep it rejoins the stored trace.
    with deps.telemetry.tracer.start_as_current_span(
        "webhook.apply",
        context=parent_context(row.traceparent),
        attributes={"daily.event_id": row.id, "daily.event_type": row.event_type or "unknown"},
    ) as span:
        effect = await _effect_of(uow, deps, row.body, row.source)
        if row.event_type in deps.relayed_event_types and row.source != RECONCILER_SOURCE:
            effect = await _relay(uow, deps, row.id, row.body, effect)
        span.set_attribute("webhook.outcome", effect.state)
    outcome = InboxOutcome(row.id, effect.state, effect.meeting_id, effect.recording_id, effect.detail)
    return effect, outcome


async def _effect_of(uow: UnitOfWork, deps: IngestDeps, body: bytes, source: str) -> Effect:
    now = deps.now()
    if source == RECONCILER_SOURCE:
        ready = decode_found_recording(body)
        return await apply_ready(uow, ready, bucket=deps.bucket, now=now)
    event = parse_event(body)
    match event:
        case RecordingStartedEvent():
            return await apply_started(uow, event.payload, now)
        case RecordingReadyEvent():
            return await apply_ready(uow, event, bucket=deps.bucket, now=now)
        case RecordingErrorEvent():
            return await apply_error(uow, event.payload, now)
        case MeetingEndedEvent():
            return await apply_meeting_ended(uow, event.payload)
        case _:
            return Effect(InboxState.IGNORED, detail="event type not acted upon")


async def _relay(uow: UnitOfWork, deps: IngestDeps, event_id: str, body: bytes, effect: Effect) -> Effect:
    """Queues the event's daily.event callback in the apply's transaction (once per event id)."""
    now = deps.now()
    queued = await uow.callbacks.enqueue(
        OutgoingCallback(
            id=new_message_id(),
            event_type=DAILY_EVENT,
            meeting_id=effect.meeting_id or "",
            recording_id=relay_subject_id(event_id),
            body=encode_daily_event(body, now),
            created_at=now,
            traceparent=current_traceparent(),
        )
    )
    if effect.state is InboxState.IGNORED:
        # Nothing else to do with it: relaying was its whole effect.
        effect = msgspec.structs.replace(effect, state=InboxState.APPLIED, detail="relayed")
    return msgspec.structs.replace(effect, callback_enqueued=effect.callback_enqueued or queued)


async def ingest_found_recording(deps: IngestDeps, ready: RecordingReady) -> str:
    """Feeds a recording found through Daily's REST API into the same path as webhooks."""
    async with deps.db.transaction() as uow:
        known = await uow.recordings.get_by_daily_id(ready.daily_recording_id)
        if known is not None and known.ready_at is not None and known.status in _SETTLED:
            return "known"
        row = InboxRecord(
            id=f"daily-recording:{ready.daily_recording_id}",
            event_type="recording.found",
            state=InboxState.PENDING,
            body=msgspec.json.encode(ready),
            source=RECONCILER_SOURCE,
            room_name=ready.room_name,
            received_at=deps.now(),
        )
        stored = await uow.inbox.add_if_absent(row)
    if not stored:
        return "duplicate"  # a previous pass stored it; the sweep retries it if still unapplied
    return str(await apply_safely(deps, row.id))


# The periodic sweep retries orphans this long; after that only registering a meeting of their
# room applies them (a shared Daily domain sends events of rooms that will never be ours).
SWEEP_HORIZON = timedelta(days=7)


async def pending_event_ids(deps: IngestDeps, limit: int) -> Sequence[str]:
    """Up to `limit` stored events still pending, oldest first: what the apply queue reads back
    after it dropped ids in a burst (orphans wait for their meeting, not for the queue)."""
    async with deps.db.transaction() as uow:
        return await uow.inbox.applicable_ids(states=(InboxState.PENDING,), limit=limit)


async def apply_pending(deps: IngestDeps, *, room_name: str | None = None, older_than_s: float = 0.0) -> int:
    """Re-applies pending and orphan events (after a meeting registers, and periodically)."""
    cutoff = (
        deps.now()
        if older_than_s <= 0
        else datetime.fromtimestamp(deps.now().timestamp() - older_than_s, UTC)
    )
    async with deps.db.transaction() as uow:
        ids = await uow.inbox.applicable_ids(
            room_name=room_name,
            received_before=cutoff,
            received_after=None if room_name is not None else deps.now() - SWEEP_HORIZON,
        )
    applied = 0
    for event_id in ids:
        if await apply_safely(deps, event_id) == InboxState.APPLIED:
            applied += 1
    return applied
