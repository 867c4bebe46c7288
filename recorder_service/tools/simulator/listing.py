"""Cursor pagination of GET /recordings (reference §1)."""

from __future__ import annotations

from recorder_service.tools.simulator.errors import invalid_request
from recorder_service.tools.simulator.model import Recording

MAX_LIMIT = 100


def newest_first(recordings: list[Recording]) -> list[Recording]:
    """Creation time at 1 s granularity, id as the tie-breaker."""
    return sorted(recordings, key=lambda r: (int(r.start_ts), r.id), reverse=True)


def page_of(
    recordings: list[Recording], limit: int, starting_after: str | None, ending_before: str | None
) -> list[Recording]:
    """`recordings` newest first. starting_after = next (older) page; ending_before = previous
    (newer) page; ending_before=OLDEST = the oldest page. Pages are newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_request(f"limit must be between 1 and {MAX_LIMIT}")
    if starting_after and ending_before:
        raise invalid_request("starting_after and ending_before cannot be combined")
    if starting_after:
        index = _index(recordings, starting_after)
        return recordings[index + 1 : index + 1 + limit]
    if ending_before == "OLDEST":
        return recordings[max(0, len(recordings) - limit) :]
    if ending_before:
        index = _index(recordings, ending_before)
        return recordings[max(0, index - limit) : index]
    return recordings[:limit]


def _index(recordings: list[Recording], recording_id: str) -> int:
    for index, rec in enumerate(recordings):
        if rec.id == recording_id:
            return index
    # Invented: Daily's answer to an unknown cursor is not documented.
    raise invalid_request(f"no recording {recording_id} in this listing")
