"""Deletion and retention loops.

Deletion jobs are leased like callbacks (SKIP LOCKED on PostgreSQL), so replicas share them
without two removing one recording's objects at once; a lease that outlives its holder (a
killed process) expires and the job is taken again. Removal is idempotent, so a job cut short
repeats harmlessly. The retention pass runs on one replica at a time (a coordinator lock);
even without it a recording is deleted once (compare-and-set on its status, one job per
recording)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from recorder_service.core.deletions import ClaimedDeletion
from recorder_service.errors import LockWaitTimeout, RecorderError
from recorder_service.resources import Resources
from recorder_service.services.deletions import (
    RetentionPolicy,
    carry_out,
    claim_due,
    delete_expired,
    next_due_at,
    pending_backlog,
    release,
)
from recorder_service.workers.outbox import worker_id

log = logging.getLogger(__name__)

BACKLOG_TIMEOUT_S = 2.0
MAX_PARALLEL_JOBS = 4


async def run_deletions(res: Resources, stop: asyncio.Event) -> None:
    owner = worker_id()
    while not stop.is_set():
        res.deletion_wakeup.clear()  # before claiming: a wake-up during the batch loops again
        try:
            claimed = await work_off(res, owner, stop)
        except Exception:
            log.exception("deletion pass failed; retrying shortly")
            claimed = 0
        if claimed >= res.settings.deletion_batch_size:
            continue  # more may be due right now
        await _sleep_until_due(res, stop)


async def work_off(res: Resources, owner: str, stop: asyncio.Event) -> int:
    """Claims a batch of due jobs and attempts each once. Returns how many were claimed."""
    deps = res.deletions
    batch = await claim_due(deps, owner)
    gate = asyncio.Semaphore(MAX_PARALLEL_JOBS)

    async def one(job: ClaimedDeletion) -> None:
        async with gate:
            if stop.is_set():
                await release(deps, job, owner)  # shutting down: let another worker take it
                return
            await carry_out(deps, job, owner)

    await asyncio.gather(*(one(job) for job in batch))
    return len(batch)


async def refresh_backlog_gauges(res: Resources) -> None:
    backlog = res.telemetry.instruments.pending_deletions
    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT_S):
            count, oldest = await pending_backlog(res.db)
    except Exception:
        log.debug("could not read the deletion backlog", exc_info=True)
        backlog.forget()
        return
    backlog.update(count, oldest)


async def _sleep_until_due(res: Resources, stop: asyncio.Event) -> None:
    await refresh_backlog_gauges(res)
    timeout = res.settings.deletion_poll_seconds
    with contextlib.suppress(Exception):
        due = await next_due_at(res.db)
        if due is not None:
            timeout = min(timeout, max(0.0, (due - res.now()).total_seconds()))
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(res.deletion_wakeup.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def retention_policy(res: Resources) -> RetentionPolicy:
    s = res.settings
    return RetentionPolicy(cloud_days=s.retention_cloud_days, raw_tracks_days=s.retention_raw_tracks_days)


async def retention_once(res: Resources) -> int:
    """One pass, by one replica at a time (LockWaitTimeout when another holds it)."""
    ttl = max(60.0, res.settings.retention_interval_seconds)
    async with res.coordinator.hold("retention", ttl_s=ttl, wait_s=0.01):
        deleted = await delete_expired(res.db, retention_policy(res), res.now(), telemetry=res.telemetry)
    if deleted:
        res.deletion_wakeup.set()
        log.info("retention: %d expired recordings deleted", deleted)
    return deleted


async def run_retention(res: Resources, stop: asyncio.Event) -> None:
    s = res.settings
    if s.retention_cloud_days is None and s.retention_raw_tracks_days is None:
        await stop.wait()  # nothing expires: recordings are kept
        return
    while not stop.is_set():
        try:
            await retention_once(res)
        except LockWaitTimeout:
            pass  # another replica runs the pass
        except RecorderError as exc:
            log.warning("retention pass failed (%s); next pass in %.0f s", exc, s.retention_interval_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=s.retention_interval_seconds)
