"""The domain's Daily webhook for this service: create it, re-activate it, list them.

Daily webhooks are domain-wide and the domain may be shared with other services, so this only
ever touches the webhook whose URL is ours; it never deletes anything (reference §7)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from recorder_service.adapters.daily.client import DailyClient, DailyWebhook

# What the service handles: recordings, plus meeting.ended to close meetings (reference §9).
# Subscribing to nothing else keeps unknown event types from reaching the receiver at all.
WEBHOOK_EVENT_TYPES = (
    "recording.started",
    "recording.ready-to-download",
    "recording.error",
    "meeting.ended",
)
# Daily's default retryType, circuit-breaker, disables ALL delivery after 3 failed deliveries
# (state FAILED, silently, until someone re-activates it), so one short outage of the receiver
# would stop every later event. exponential retries each message up to 5 times with backoff and
# never trips the whole webhook (reference §8); polling covers the messages it drops.
WEBHOOK_RETRY_TYPE = "exponential"


class EnsureAction(enum.StrEnum):
    UNCHANGED = "unchanged"
    CREATED = "created"
    REACTIVATED = "reactivated"
    UPDATED = "updated"


@dataclass(frozen=True)
class EnsureResult:
    action: EnsureAction
    webhook: DailyWebhook
    previous_state: str | None = None

    def describe(self) -> str:
        hook = self.webhook
        if self.action is EnsureAction.CREATED:
            what = "created"
        elif self.action is EnsureAction.REACTIVATED:
            what = f"re-activated (was {self.previous_state or 'unknown'})"
        elif self.action is EnsureAction.UPDATED:
            what = "event types updated"
        else:
            what = "already active, nothing to do"
        return f"webhook {hook.uuid} for {hook.url}: {what}; state={hook.state or '-'}"


def event_types_for(relayed: Sequence[str] = ()) -> list[str]:
    """What the service needs, then the types it relays to Reflector (RECORDER_FORWARD_DAILY_EVENTS)."""
    return [*WEBHOOK_EVENT_TYPES, *(t for t in dict.fromkeys(relayed) if t not in WEBHOOK_EVENT_TYPES)]


async def ensure_webhook(
    daily: DailyClient, url: str, hmac_secret_b64: str, *, relayed: Sequence[str] = ()
) -> EnsureResult:
    """Idempotent: running it again on a healthy domain sends no write to Daily.

    Create, update and re-activation all make Daily POST a verification request to `url` first;
    it must answer 200 within a few seconds or Daily refuses with 400 (raised as DailyError)."""
    wanted = event_types_for(relayed)
    ours = [hook for hook in await daily.list_webhooks() if hook.url == url]
    active = next((hook for hook in ours if hook.state == "ACTIVE"), None)
    if active is not None:
        have = set(active.event_types or ())
        if not active.event_types or set(wanted) <= have:  # none listed: every type
            return EnsureResult(EnsureAction.UNCHANGED, active)
        # Subscribe to what is missing; types someone else added to our webhook stay.
        types = [*active.event_types, *(t for t in wanted if t not in have)]
        hook = await daily.update_webhook(
            active.uuid, url, hmac_secret=hmac_secret_b64, event_types=types, retry_type=WEBHOOK_RETRY_TYPE
        )
        return EnsureResult(EnsureAction.UPDATED, hook, previous_state=active.state)
    if ours:
        # FAILED (or INACTIVE): POST /webhooks/:uuid with the same url is Daily's documented way
        # back to ACTIVE; it re-verifies the URL, resets failedCount and resumes delivery.
        stale = ours[0]
        hook = await daily.update_webhook(
            stale.uuid,
            url,
            hmac_secret=hmac_secret_b64,
            # No list (or an empty one) means every type: keep it. Otherwise add what is missing.
            event_types=None
            if not stale.event_types
            else sorted(set(stale.event_types) | set(wanted), key=wanted_order(wanted)),
            retry_type=WEBHOOK_RETRY_TYPE,
        )
        return EnsureResult(EnsureAction.REACTIVATED, hook, previous_state=stale.state)
    hook = await daily.create_webhook(
        url,
        hmac_secret=hmac_secret_b64,
        event_types=wanted,
        retry_type=WEBHOOK_RETRY_TYPE,
    )
    return EnsureResult(EnsureAction.CREATED, hook)


def wanted_order(wanted: Sequence[str]) -> Callable[[str], tuple[int, str]]:
    """Ours first in their order, then anything else the webhook had, alphabetically."""
    rank = {t: i for i, t in enumerate(wanted)}
    return lambda t: (rank.get(t, len(rank)), t)


async def list_webhooks(daily: DailyClient, *, out: TextIO) -> list[DailyWebhook]:
    """Prints one line per webhook of the domain; the hmac secret is never printed."""
    hooks = await daily.list_webhooks()
    headers = ("uuid", "url", "state", "failedCount", "retryType", "eventTypes")
    rows = [
        (
            hook.uuid,
            hook.url,
            hook.state or "-",
            "-" if hook.failed_count is None else str(hook.failed_count),
            hook.retry_type or "-",
            ",".join(hook.event_types) if hook.event_types else "-",
        )
        for hook in hooks
    ]
    if not rows:
        out.write("no webhooks on this Daily domain\n")
        out.flush()
        return hooks
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for cells in (headers, *rows):
        out.write("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n")
    out.flush()
    return hooks
