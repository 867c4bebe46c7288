"""Callback dispatcher: delivers the outbox to Reflector, at least once, across restarts.

Rows are leased (SKIP LOCKED on PostgreSQL) so replicas share the work without delivering
one callback concurrently twice; a lease that outlives its holder (a killed process)
expires and the row becomes deliverable again."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta

from opentelemetry.trace import SpanKind, Status, StatusCode

from recorder_service.adapters.callbacks import AttemptResult, CallbackSender
from recorder_service.core.callbacks import CallbackSigner
from recorder_service.core.models import ClaimedCallback
from recorder_service.core.retry_policy import next_attempt_at
from recorder_service.resources import Resources
from recorder_service.telemetry import current_traceparent
from recorder_service.telemetry.context import context_of

log = logging.getLogger(__name__)

MAX_PARALLEL_DELIVERIES = 8
PENDING_STATS_TIMEOUT_S = 2.0
# The pending backlog (gauges, next attempt due) is read at most this often while busy.
BACKLOG_READ_S = 1.0
# A callback due but held by another worker is looked at again after this long.
LEASED_RECHECK_S = 0.25


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _Schedule:
    """When this worker next has something to do, as far as it knows: the earliest next attempt
    the database reported (read at most every BACKLOG_READ_S, with the pending gauges) and the
    retries it scheduled itself since."""

    def __init__(self) -> None:
        self.next_due: datetime | None = None
        self.read_at = -BACKLOG_READ_S

    def retry_at(self, when: datetime | None) -> None:
        if when is not None and (self.next_due is None or when < self.next_due):
            self.next_due = when


async def run_outbox(res: Resources, stop: asyncio.Event) -> None:
    s = res.settings
    if s.callback_url is None or s.callback_secret is None:
        log.warning("RECORDER_CALLBACK_URL is unset: callbacks stay pending until it is configured")
        await stop.wait()
        return
    sender = CallbackSender(res.callback_http, s.callback_url, CallbackSigner(s.callback_secret))
    owner = worker_id()
    schedule = _Schedule()
    while not stop.is_set():
        res.outbox_wakeup.clear()  # before claiming: a wake-up during delivery loops again
        try:
            claimed = await deliver_due(res, sender, owner, stop, schedule)
        except Exception:
            log.exception("callback dispatch failed; retrying shortly")
            claimed = 0
        if claimed >= s.outbox_batch_size:
            continue  # more may be due right now
        await _sleep_until_due(res, stop, schedule, claimed)


async def refresh_pending_gauges(res: Resources) -> datetime | None:
    """Refreshes the cached backlog the pending-callback gauges report (they cannot query);
    returns the earliest next attempt of a pending callback (None: none, or unknown)."""
    pending = res.telemetry.instruments.pending
    try:
        async with asyncio.timeout(PENDING_STATS_TIMEOUT_S), res.db.autocommit() as db:
            count, oldest, due = await db.outbox.backlog()
    except Exception:
        log.debug("could not read the callback backlog", exc_info=True)
        pending.forget()
        return None
    pending.update(count, oldest)
    return due


async def _sleep_until_due(res: Resources, stop: asyncio.Event, schedule: _Schedule, claimed: int) -> None:
    """Waits for a wake-up (a new callback), the next attempt due, or the poll period. The
    backlog is read at most every BACKLOG_READ_S: a worker delivering one callback per webhook
    does not pay two more queries per callback; other replicas' retries are seen within that."""
    now_s = time.monotonic()
    if now_s - schedule.read_at >= BACKLOG_READ_S:
        schedule.read_at = now_s
        schedule.next_due = None
        schedule.retry_at(await refresh_pending_gauges(res))
    timeout = res.settings.outbox_poll_seconds
    if schedule.next_due is not None:
        wait = (schedule.next_due - res.now()).total_seconds()
        if wait <= 0 and not claimed:
            # Due but not claimable: another worker holds it (or the reading is stale).
            schedule.next_due = None
            wait = LEASED_RECHECK_S
        timeout = min(timeout, max(0.0, wait))
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(res.outbox_wakeup.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def deliver_due(
    res: Resources,
    sender: CallbackSender,
    owner: str,
    stop: asyncio.Event,
    schedule: _Schedule,
) -> int:
    """Claims a batch of due callbacks, attempts each once, and records every outcome in one
    transaction. Returns how many were claimed."""
    s = res.settings
    async with res.db.autocommit() as db:
        batch = await db.outbox.claim_due(
            now=res.now(),
            limit=s.outbox_batch_size,
            owner=owner,
            lease=timedelta(seconds=s.outbox_lease_seconds),
        )
    if not batch:
        return 0
    gate = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)

    async def one(row: ClaimedCallback) -> tuple[ClaimedCallback, AttemptResult] | None:
        async with gate:
            if stop.is_set():
                await _release(res, row.id, owner)  # shutting down: let another worker take it
                return None
            # A child of the span that enqueued the callback (the webhook's trace), so
            # Reflector's work joins the same trace through the traceparent header.
            with res.telemetry.tracer.start_as_current_span(
                "callback.deliver",
                context=context_of(row.traceparent),
                kind=SpanKind.CLIENT,
                attributes={
                    "callback.id": row.id,
                    "callback.event_type": row.event_type,
                    "callback.attempt": row.attempts + 1,
                },
            ) as span:
                result = await sender.send(
                    row.id, row.body, traceparent=current_traceparent() or row.traceparent
                )
                if result.status_code is not None:
                    span.set_attribute("http.response.status_code", result.status_code)
                if not result.delivered:
                    span.set_status(Status(StatusCode.ERROR, result.error))
            return row, result

    attempts = [a for a in await asyncio.gather(*(one(row) for row in batch)) if a is not None]
    retries = await _record(res, owner, attempts)
    for retry_at in retries:
        schedule.retry_at(retry_at)
    return len(batch)


async def _record(
    res: Resources, owner: str, attempts: list[tuple[ClaimedCallback, AttemptResult]]
) -> list[datetime]:
    """Records the outcome of each attempt of a batch, each atomically with its attempt's row (a
    crash before one is recorded leaves its lease to expire, and that callback is delivered
    again: at least once). Returns the retries it scheduled."""
    now = res.now()
    outcomes: list[tuple[ClaimedCallback, AttemptResult, datetime | None, bool]] = []
    async with res.db.autocommit() as db:
        for row, result in attempts:
            retry_at = (
                None
                if result.delivered
                else next_attempt_at(
                    row.attempts + 1,
                    res.settings.callback_retry_seconds,
                    now,
                    retry_after_s=result.retry_after_s,
                )
            )
            kept = await db.outbox.record_attempt(
                row.id,
                owner=owner,
                attempted_at=now,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
                delivered=result.delivered,
                next_attempt_at=retry_at,
            )
            outcomes.append((row, result, retry_at, kept))
    for row, result, retry_at, kept in outcomes:
        _report(res, row, result, retry_at, kept=kept)
    return [retry_at for _row, _result, retry_at, kept in outcomes if kept and retry_at is not None]


def _report(
    res: Resources, row: ClaimedCallback, result: AttemptResult, retry_at: datetime | None, *, kept: bool
) -> None:
    failed_attempts = row.attempts + 1
    extra = {"callback_id": row.id, "meeting_id": row.meeting_id}
    if kept:
        outcome = "delivered" if result.delivered else "dead" if retry_at is None else "retried"
        res.telemetry.instruments.count_callback(row.event_type, outcome)
    if not kept:
        log.warning("lease on callback lost before its outcome was recorded", extra=extra)
    elif result.delivered:
        log.info("callback %s delivered (attempt %d)", row.event_type, failed_attempts, extra=extra)
    elif retry_at is None:
        log.error(
            "callback %s is dead after %d attempts: %s",
            row.event_type,
            failed_attempts,
            result.error,
            extra=extra,
        )
    else:
        log.warning(
            "callback %s attempt %d failed (%s); next at %s",
            row.event_type,
            failed_attempts,
            result.error,
            retry_at.isoformat(),
            extra=extra,
        )


async def _release(res: Resources, row_id: str, owner: str) -> None:
    async with res.db.transaction() as uow:
        await uow.callbacks.release(row_id, owner)
