"""Inbox retention: webhook events that were applied or ignored are deleted once old.

The event id is the idempotency key of Daily's deliveries, so a row must outlive every
redelivery Daily can make. With `retryType=exponential` Daily tries a message at most 5 times
with backoff up to 15 minutes, so about an hour at most; with the default circuit breaker it
does not retry a message at all (docs/operations.md, "Inbox retention"). The retention
(RECORDER_INBOX_RETENTION_DAYS, at least one day) is far beyond that. Kept whatever their age:
pending and orphan events (still to be applied), unparseable ones (kept for inspection), and
recordings the reconciler found (source "reconciler")."""

from __future__ import annotations

from datetime import datetime

from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.core.statuses import InboxState

# What ingest stores as the source of Daily's deliveries (its `stored_row` default).
WEBHOOK_SOURCE = "webhook"
PRUNABLE_STATES = (InboxState.APPLIED, InboxState.IGNORED)
BATCH = 1000


async def prune_inbox(db: Database, *, received_before: datetime, batch: int = BATCH) -> int:
    """Deletes applied and ignored webhook events received before the cutoff; how many."""
    total = 0
    while True:
        async with db.transaction() as uow:
            deleted = await uow.inbox.delete_done(
                received_before=received_before, states=PRUNABLE_STATES, source=WEBHOOK_SOURCE, limit=batch
            )
        total += deleted
        if deleted < batch:
            return total
