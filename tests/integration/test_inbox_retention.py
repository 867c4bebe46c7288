"""Inbox retention: applied and ignored webhook events older than RECORDER_INBOX_RETENTION_DAYS
are deleted; pending, orphan and unparseable events and reconciler finds are kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from recorder_service.core.models import RecordingReady
from recorder_service.resources import Resources
from recorder_service.services.inbox_pruning import prune_inbox
from recorder_service.services.ingest import ingest_found_recording
from recorder_service.settings import ConfigError, load_settings
from recorder_service.workers.inbox_pruning import prune_once
from tests.plugins.service import AUTH, ServiceFactory, service_env
from tests.support.webhooks import envelope, post_webhook, ready_payload, until_applied

START_TS = 1767261600 + 300  # inside the meeting's window


async def states(client: Any) -> dict[str, str]:
    r = await client.get("/v1/daily/events", params={"limit": 1000}, headers=AUTH)
    return {e["id"]: e["state"] for e in r.json()["events"]}


async def test_old_applied_and_ignored_events_are_pruned_and_nothing_else(
    db_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, RECORDER_INBOX_RETENTION_DAYS="30")) as svc:
        res: Resources = svc.app_state.resources  # type: ignore[attr-defined]
        r = await svc.client.put(
            "/v1/meetings/kept-meeting",
            json={
                "room_name": "retention-room",
                "recording_type": "cloud",
                "start_date": "2026-01-01T10:00:00Z",
                "end_date": "2026-01-01T11:00:00Z",
            },
            headers=AUTH,
        )
        assert r.status_code == 201
        bodies = {
            "applied": envelope(
                "recording.ready-to-download", ready_payload(room="retention-room", start_ts=START_TS)
            ),
            "ignored": envelope("waiting-participant.joined", {"room": "retention-room"}),
            "orphan": envelope(
                "recording.ready-to-download", ready_payload(room="nobody-registered", start_ts=START_TS)
            ),
        }
        for body in bodies.values():
            assert (await post_webhook(svc.client, body)).status_code == 200
        assert (await post_webhook(svc.client, b"not json at all")).status_code == 200
        await until_applied(svc.client)
        await ingest_found_recording(
            res.ingest,
            RecordingReady(
                daily_recording_id="d0a0e0f0-0000-4000-8000-000000000001",
                room_name="nobody-registered-either",
                recording_type="cloud",
                audio_only=False,
                start_ts=START_TS,
                duration=60,
                s3_key="acme/x/1",
                tracks=None,
            ),
        )
        before = await states(svc.client)
        assert sorted(before.values()) == ["applied", "ignored", "orphan", "orphan", "unparseable"]
        # Everything is 40 days old now.
        async with res.db.engine.begin() as conn:
            await conn.execute(
                text("UPDATE inbox_events SET received_at = :old"), {"old": res.now() - timedelta(days=40)}
            )
        assert await prune_inbox(res.db, received_before=res.now() - timedelta(days=41)) == 0
        assert await prune_once(res) == 2
        after = await states(svc.client)
        assert sorted(after.values()) == ["orphan", "orphan", "unparseable"]
        assert bodies["applied"]["id"] not in after and bodies["ignored"]["id"] not in after
        assert await prune_once(res) == 0


def test_the_retention_is_at_least_a_day() -> None:
    # Daily redelivers for about an hour at most: a day keeps every redelivery deduplicated.
    with pytest.raises(ConfigError, match="RECORDER_INBOX_RETENTION_DAYS"):
        load_settings(service_env("sqlite+aiosqlite:///./x.db", RECORDER_INBOX_RETENTION_DAYS="0.5"))
