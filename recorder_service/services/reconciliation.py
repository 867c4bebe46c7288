"""Reconciliation with Daily's recording list: a webhook Daily never delivered (it disables
endpoints after a few failures) is found anyway, and stuck state is cleaned up."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from recorder_service.adapters.daily.events import (
    decode_recording,
    decode_recording_list,
    is_finished,
    ready_from_rest,
)
from recorder_service.core.statuses import RecordingStatus
from recorder_service.services.ingest import IngestDeps, ingest_found_recording

log = logging.getLogger(__name__)

CURSOR_KEY = "reconciler.starting_after"


class RecordingLister(Protocol):
    async def list_recordings_raw(
        self,
        *,
        limit: int = 100,
        starting_after: str | None = None,
        ending_before: str | None = None,
        room_name: str | None = None,
    ) -> bytes: ...

    async def get_recording_raw(self, recording_id: str) -> bytes: ...


@dataclass(frozen=True)
class ReconcilePolicy:
    page_size: int
    lookback: timedelta
    starting_claim_timeout: timedelta
    stuck_after: timedelta
    page_pause_s: float


@dataclass
class PassReport:
    pages: int = 0
    finished_seen: int = 0
    fed: int = 0
    applied: int = 0
    complete: bool = False


async def reconcile_pass(deps: IngestDeps, daily: RecordingLister, policy: ReconcilePolicy) -> PassReport:
    """Walks Daily's list newest-first back to the lookback horizon. The position is stored
    after every page, so a pass that fails (Daily down) resumes where it stopped."""
    report = PassReport()
    horizon_ts = (deps.now() - policy.lookback).timestamp()
    async with deps.db.transaction() as uow:
        cursor = await uow.state.get(CURSOR_KEY) or None
    while True:
        page = decode_recording_list(
            await daily.list_recordings_raw(limit=policy.page_size, starting_after=cursor)
        )
        report.pages += 1
        for rec in page.recordings:
            if not is_finished(rec):
                continue
            report.finished_seen += 1
            ready = ready_from_rest(rec)
            if ready is None:
                continue
            outcome = await ingest_found_recording(deps, ready)
            if outcome not in ("known", "duplicate"):
                report.fed += 1
                report.applied += outcome == "applied"
        oldest = min((r.start_ts for r in page.recordings), default=0.0)
        last = len(page.recordings) + len(page.rejected) < policy.page_size or page.last_id is None
        cursor = None if last or oldest < horizon_ts else page.last_id
        async with deps.db.transaction() as uow:
            await uow.state.put(CURSOR_KEY, cursor or "")
        if cursor is None:
            report.complete = True
            return report
        await asyncio.sleep(policy.page_pause_s)


async def clean_up_stuck(
    deps: IngestDeps, daily: RecordingLister, policy: ReconcilePolicy
) -> tuple[int, int]:
    """Expires start claims whose holder died, and asks Daily about recordings that never
    got a ready event long after they started. Returns (claims expired, recordings resolved)."""
    now = deps.now()
    async with deps.db.transaction() as uow:
        expired = await uow.recordings.delete_stale_claims(now - policy.starting_claim_timeout)
        stuck = await uow.recordings.unfinished_started_before(now - policy.stuck_after)
    resolved = 0
    for rec in stuck:
        if rec.daily_recording_id is None:
            continue  # the list pass matches it by room and time if Daily has it
        found = decode_recording(await daily.get_recording_raw(rec.daily_recording_id))
        if found.status == "canceled":
            async with deps.db.transaction() as uow:
                await uow.recordings.set_fields_unless_deleted(
                    rec.id, status=RecordingStatus.FAILED, error="Daily canceled the recording"
                )
            resolved += 1
        elif is_finished(found) and (ready := ready_from_rest(found)) is not None:
            await ingest_found_recording(deps, ready)
            resolved += 1
    return expired, resolved
