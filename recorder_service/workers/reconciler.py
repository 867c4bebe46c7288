"""Reconciler and inbox-sweep loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from recorder_service.errors import LockWaitTimeout, RecorderError
from recorder_service.resources import Resources
from recorder_service.services.ingest import apply_pending
from recorder_service.services.reconciliation import ReconcilePolicy, clean_up_stuck, reconcile_pass

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


def reconcile_policy(res: Resources) -> ReconcilePolicy:
    s = res.settings
    return ReconcilePolicy(
        page_size=s.reconcile_page_size,
        lookback=timedelta(hours=s.reconcile_lookback_hours),
        starting_claim_timeout=timedelta(seconds=s.starting_claim_timeout_seconds),
        stuck_after=timedelta(hours=s.stuck_recording_hours),
        page_pause_s=s.reconcile_page_pause_seconds,
    )


async def reconcile_once(res: Resources) -> None:
    """One pass, by one replica at a time."""
    policy = reconcile_policy(res)
    deps = res.ingest
    ttl = max(60.0, res.settings.reconcile_interval_seconds)
    async with res.coordinator.hold("reconciler", ttl_s=ttl, wait_s=0.01):
        report = await reconcile_pass(deps, res.daily, policy)
        expired, resolved = await clean_up_stuck(deps, res.daily, policy)
    log.info(
        "reconciliation: %d pages, %d finished recordings, %d new, %d applied; "
        "%d stale claims expired, %d stuck recordings resolved",
        report.pages,
        report.finished_seen,
        report.fed,
        report.applied,
        expired,
        resolved,
    )


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_reconciler(res: Resources, stop: asyncio.Event) -> None:
    interval = res.settings.reconcile_interval_seconds
    failures = 0
    while not stop.is_set():
        try:
            await reconcile_once(res)
            failures = 0
            delay = interval
        except LockWaitTimeout:
            delay = interval  # another replica is reconciling
        except RecorderError as exc:
            failures += 1
            delay = min(interval, MAX_BACKOFF_S, 5.0 * 2 ** (failures - 1))
            log.warning("reconciliation failed (%s); resuming from the stored cursor in %.0f s", exc, delay)
        await _pause(stop, delay)


async def run_inbox_sweep(res: Resources, stop: asyncio.Event) -> None:
    """Applies events left pending (a crash between store and apply) or orphaned (their meeting
    was registered later through a path that did not trigger them)."""
    period = res.settings.inbox_sweep_seconds
    while not stop.is_set():
        await _pause(stop, period)
        if stop.is_set():
            return
        try:
            await apply_pending(res.ingest, older_than_s=period / 2)
        except RecorderError as exc:
            log.warning("inbox sweep failed: %s", exc)
