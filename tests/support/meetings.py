"""Registering a meeting through the API, as Reflector does (contract §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.plugins.service import AUTH


def meeting_body(
    room: str, *, started_ago: timedelta = timedelta(minutes=10), lasts: timedelta = timedelta(hours=1)
) -> dict[str, Any]:
    """A cloud-recorded meeting in `room` that started `started_ago` and lasts `lasts`."""
    start = datetime.now(UTC) - started_ago
    return {
        "room_name": room,
        "recording_type": "cloud",
        "start_date": start.isoformat(),
        "end_date": (start + lasts).isoformat(),
    }


async def register_meeting(client: httpx.AsyncClient, meeting_id: str, body: dict[str, Any]) -> None:
    r = await client.put(f"/v1/meetings/{meeting_id}", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
