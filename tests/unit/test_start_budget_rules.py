"""core/start_budget.py: the order of the start queue and the Retry-After it promises."""

from __future__ import annotations

from recorder_service.core.start_budget import (
    STALE_CLASS,
    penalty_s,
    priority_class,
    queue_score,
    retry_after_s,
    turn_estimate_s,
)
from recorder_service.tools.simulator.faults import max_in_window


def test_first_calls_have_no_penalty_and_long_empty_rooms_sink() -> None:
    assert priority_class(retry=False, streak_age_s=None) == 0
    assert priority_class(retry=True, streak_age_s=None) == 1
    assert priority_class(retry=True, streak_age_s=1) == 2
    assert priority_class(retry=True, streak_age_s=29) == 5
    assert priority_class(retry=False, streak_age_s=30) == STALE_CLASS
    assert [penalty_s(c) for c in (0, 1, 2, 5)] == [0, 1, 2, 16]


def test_a_fresh_retry_yields_to_first_calls_that_arrived_within_its_penalty() -> None:
    retry = queue_score(priority_class(retry=True, streak_age_s=1), arrived_ms=10_000)
    assert queue_score(0, arrived_ms=11_900) < retry < queue_score(0, arrived_ms=12_100)
    # A room empty for half a minute or more goes after everybody else, however early it came.
    poked = queue_score(priority_class(retry=True, streak_age_s=300), arrived_ms=10_000)
    assert queue_score(5, arrived_ms=10_000 + 10**9) < poked
    assert queue_score(STALE_CLASS, arrived_ms=9_000) < poked


def test_turn_estimates_follow_the_steady_rate() -> None:
    assert turn_estimate_s(ahead=0, free=1, next_free_s=0, calls=5, window_s=5) == 0
    assert turn_estimate_s(ahead=10, free=0, next_free_s=0.5, calls=5, window_s=5) == 10.5
    assert retry_after_s(30, wait_s=20) == 20
    assert retry_after_s(0.2, wait_s=20) == 1


def test_the_simulator_counts_calls_in_any_window() -> None:
    assert max_in_window([], 5) == 0
    assert max_in_window([0, 1, 2, 3, 4, 5, 6], 5) == 5
    assert max_in_window([0, 5, 10], 5) == 1  # exactly a window apart: outside
    assert max_in_window([0, 0.1, 0.2, 9, 9.1], 5) == 3
