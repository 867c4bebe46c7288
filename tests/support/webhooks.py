"""Builds and posts Daily webhooks the way Daily does (signing from tests/support/daily_signing)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx

from tests.plugins.service import AUTH, WEBHOOK_SECRET
from tests.support.daily_signing import daily_headers


def envelope(event_type: str, payload: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "type": event_type,
        "id": event_id or f"evt-{uuid.uuid4()}",
        "payload": payload,
        "event_ts": time.time(),
    }


def ready_payload(
    *,
    room: str,
    start_ts: float,
    recording_id: str | None = None,
    type_: str = "cloud",
    duration: float = 1834,
    s3_key: str | None = None,
    tracks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": type_,
        "recording_id": recording_id or str(uuid.uuid4()),
        "room_name": room,
        "start_ts": start_ts,
        "status": "finished",
        "max_participants": 2,
        "duration": duration,
        "s3_key": s3_key or f"acme/{room}/{int(start_ts * 1000)}",
        "share_token": "x",
    }
    if type_ == "raw-tracks":
        payload["tracks"] = tracks
    return payload


def raw_tracks(room: str, start_ts: float) -> list[dict[str, Any]]:
    ms = int(start_ts * 1000)
    return [
        {"type": "audio", "s3Key": f"acme/{room}/{ms}-p1-cam-audio-{ms + 200}", "size": 100},
        {"type": "video", "s3Key": f"acme/{room}/{ms}-p1-cam-video-{ms + 300}", "size": 1000},
        {"type": "audio", "s3Key": f"acme/{room}/{ms}-p2-cam-audio-{ms + 900}", "size": 120},
    ]


async def post_webhook(
    client: httpx.AsyncClient,
    body: dict[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = daily_headers(secret, str(int(time.time())), raw)
    return await client.post("/v1/daily/webhook", content=raw, headers=signed | (headers or {}))


async def until_applied(client: httpx.AsyncClient, *, timeout_s: float = 15.0) -> None:
    """Waits until no stored event is `pending`: concurrent deliveries are applied just after
    their 200 (a lone one before it). Fails with the leftovers when they are not applied."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = await client.get("/v1/daily/events", params={"state": "pending"}, headers=AUTH)
        assert r.status_code == 200, r.text
        pending = r.json()["events"]
        if not pending:
            return
        assert time.monotonic() < deadline, f"events still pending after {timeout_s} s: {pending[:3]}"
        await asyncio.sleep(0.05)
