"""Rules of the deployment's budget of recording starts at Daily (the arithmetic only; the
budget itself lives in adapters/start_budget.py, in Redis or in the process).

Daily allows about one recording start per second per domain (5 in any 5 s). Callers queue for
a call, ordered by arrival plus a penalty that depends on their priority class:

- class 0, no penalty: the first call of a start for a meeting and type that Daily has not
  recently answered "not hosting", so a meeting whose participants just joined goes first;
- class 1 to 5: retries, and meetings Daily has answered "not hosting" for less than 30 s (its
  "streak"; Daily registers a call within seconds of the first join, ~15 s at worst). The penalty
  doubles with each class and the class grows with the streak: a retry a second after the join
  lets first calls that arrive within 2 s go first, one after 20 s lets those within 16 s go.
- the stale class: a room that has not been hosting for 30 s or more (an empty room that an
  anonymous caller keeps poking) only gets calls that nobody else is waiting for, in arrival
  order among themselves. It is never refused outright: spare calls still reach it."""

from __future__ import annotations

import math

# A streak is forgotten this long after the last start request that met it.
STREAK_MEMORY_S = 600.0
# A room "not hosting" for this long is stale (no real join takes Daily this long to register).
STALE_STREAK_S = 30.0
STALE_CLASS = 99
# The stale class's penalty: beyond any arrival time, so it sorts after every other class.
_STALE_PENALTY_S = 1e10


def priority_class(*, retry: bool, streak_age_s: float | None) -> int:
    """0 for a first call; 1 + log2(1 + seconds the room has not been hosting) for a streak under
    30 s (0 s → 1, 1 s → 2, 3 s → 3, 7 s → 4, 15 s → 5); STALE_CLASS after that."""
    if streak_age_s is None:
        return 1 if retry else 0
    if streak_age_s >= STALE_STREAK_S:
        return STALE_CLASS
    return 1 + math.floor(math.log2(1 + max(0.0, streak_age_s)))


def penalty_s(priority: int) -> float:
    """0 for class 0, then 1 s, 2 s, 4 s… (2 ** (class - 1) seconds); the stale class last."""
    if priority == STALE_CLASS:
        return _STALE_PENALTY_S
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
