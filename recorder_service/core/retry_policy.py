"""When to try a failed callback again, and when to give up."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

JITTER = 0.2
MAX_RETRY_AFTER_S = 24 * 3600


def next_attempt_at(
    failed_attempts: int,
    delays_s: Sequence[float],
    now: datetime,
    *,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """`failed_attempts` counts the attempt that just failed. None: the schedule is spent (dead).
    ±20 % jitter keeps many callbacks that failed together from retrying together; a receiver's
    Retry-After is honoured as a lower bound."""
    if failed_attempts > len(delays_s):
        return None
    delay = delays_s[failed_attempts - 1] * (1 + (rng or random).uniform(-JITTER, JITTER))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return now + timedelta(seconds=delay)
