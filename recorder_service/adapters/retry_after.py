"""Reading a Retry-After header (seconds form; an HTTP-date is ignored)."""

from __future__ import annotations


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
