"""Rules of the deployment's budget of recording starts at Daily (the arithmetic only; the
budget itself lives in adapters/start_budget.py, in Redis or in the process).

Daily allows about one recording start per second per domain (5 in any 5 s). Callers queue for
a call, ordered by arrival plus a penalty that depends on their priority class:

- class 0, no penalty: the first call of a start for a meeting and type that Daily has not
  recently answered "not hosting", so a meeting whose participants just joined goes first;
- class 1 and up: retries, and meetings Daily keeps answering "not hosting". The penalty doubles
  with each class and the class grows with how long the room has not been hosting (its
  "streak"): a retry a second after the join lets first calls that arrive within 2 s go first,
  while a room that stayed empty for minutes (one an anonymous caller keeps poking) waits about
  as long as it has been empty. Nobody starves: a penalty is a delay, not a ban."""

from __future__ import annotations

import math

# A streak is forgotten this long after the last start request that met it.
STREAK_MEMORY_S = 600.0
_MAX_CLASS = 20


def priority_class(*, retry: bool, streak_age_s: float | None) -> int:
    """0 for a first call; 1 + log2(1 + seconds the room has not been hosting), capped, otherwise.
    1 s → 2, 3 s → 3, 7 s → 4, 15 s → 5, 1 min → 6, 5 min → 9."""
    if streak_age_s is None:
        return 1 if retry else 0
    return 1 + min(_MAX_CLASS, math.floor(math.log2(1 + max(0.0, streak_age_s))))


def penalty_s(priority: int) -> float:
    """0 for class 0, then 1 s, 2 s, 4 s… (2 ** (class - 1) seconds)."""
    return 0.0 if priority <= 0 else float(2 ** (priority - 1))


def queue_score(priority: int, arrived_ms: float) -> float:
    """Place in the queue (lower goes first): arrival in milliseconds plus the class's penalty."""
    return arrived_ms + penalty_s(priority) * 1000


def turn_estimate_s(*, ahead: int, free: int, next_free_s: float, calls: int, window_s: float) -> float:
    """Seconds until a caller with `ahead` callers before it can expect its call, when `free` calls
    are available now and the next one frees in `next_free_s`: in steady state calls free at
    `calls / window_s` per second."""
    if ahead < free:
        return max(0.0, next_free_s)
    return max(0.0, next_free_s) + (ahead - max(free, 0)) * window_s / calls


def retry_after_s(estimate_s: float, wait_s: float) -> int:
    """An honest Retry-After for a caller refused after waiting `wait_s`: come back half a wait
    before the expected turn (the next request waits again), never under one second."""
    return max(1, math.ceil(estimate_s - wait_s / 2))
