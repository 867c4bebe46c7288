"""RECORDER_FORWARD_DAILY_EVENTS: listed Daily event types reach Reflector as signed `daily.event`
callbacks through the outbox, once per Daily event id; nothing unlisted is relayed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from tests.plugins.receiver import CallbackReceiver
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.support.meetings import meeting_body, register_meeting
from tests.support.webhooks import envelope, post_webhook, ready_payload

ROOM = "relay-room"


@pytest.fixture
async def svc(db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory) -> Any:
    env = service_env(
        db_url,
        RECORDER_CALLBACK_URL=callback_receiver.url,
        RECORDER_CALLBACK_SECRET=callback_receiver.secret,
        RECORDER_BACKGROUND="true",
        RECORDER_S3_BUCKET="recordings-bucket",
        RECORDER_CALLBACK_RETRY_SECONDS="0.2,0.2,0.2",
        RECORDER_RECONCILE_INTERVAL_SECONDS="3600",
        RECORDER_FORWARD_DAILY_EVENTS="participant.joined,participant.left,recording.ready-to-download",
    )
    async with service_factory(env) as running:
        yield running


def participant(event_type: str, event_id: str) -> dict[str, Any]:
    body = envelope(
        event_type,
        {"room": ROOM, "session_id": str(uuid.uuid4()), "user_name": "Ann", "joined_at": time.time()},
        event_id,
    )
    body["event_ts"] = 1767260346.218  # a float, kept exactly as sent
    return body


async def register(svc: RunningService, meeting_id: str) -> None:
    await register_meeting(svc.client, meeting_id, meeting_body(ROOM))


async def test_listed_events_are_relayed_once_signed_and_exactly(
    svc: RunningService, callback_receiver: CallbackReceiver
) -> None:
    meeting_id = str(uuid.uuid4())
    await register(svc, meeting_id)
    joined = participant("participant.joined", "evt-joined-1")
    left = participant("participant.left", "evt-left-1")
    waiting = participant("waiting-participant.joined", "evt-waiting-1")  # not listed
    sent_joined = json.dumps(joined, indent=1).encode()  # as Daily formats it, whitespace and all
    for body in (sent_joined, sent_joined):  # a redelivery
        r = await post_webhook(svc.client, body)
        assert r.status_code == 200, r.text
    for event in (left, waiting):
        assert (await post_webhook(svc.client, envelope_bytes(event))).status_code == 200
    ready = envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=time.time() - 120))
    assert (await post_webhook(svc.client, envelope_bytes(ready))).status_code == 200

    # joined, left, ready relayed; plus the cloud_ready callback of the recording itself.
    deliveries = await callback_receiver.wait_for(4, timeout_s=10)
    await asyncio.sleep(0.5)  # anything extra would have arrived by now
    relayed = [d for d in callback_receiver.all_requests if d.payload["type"] == "daily.event"]
    assert all(d.signature_valid for d in deliveries)
    assert sorted(d.payload["data"]["id"] for d in relayed) == sorted(
        ["evt-joined-1", "evt-left-1", ready["id"]]
    )
    by_id = {d.payload["data"]["id"]: d for d in relayed}
    assert by_id["evt-joined-1"].payload["data"] == joined  # the event as received
    assert by_id["evt-left-1"].payload["data"] == left
    assert len({d.webhook_id for d in relayed}) == 3
    others = [d.payload["type"] for d in callback_receiver.all_requests if d.payload["type"] != "daily.event"]
    assert others == ["recording.cloud_ready"]

    r = await svc.client.get("/v1/daily/events", headers=AUTH)
    states = {e["id"]: e["state"] for e in r.json()["events"]}
    assert states["evt-joined-1"] == "applied"
    assert states["evt-waiting-1"] == "ignored"


def envelope_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def test_nothing_is_relayed_when_no_type_is_listed(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    env = service_env(
        db_url,
        RECORDER_CALLBACK_URL=callback_receiver.url,
        RECORDER_CALLBACK_SECRET=callback_receiver.secret,
        RECORDER_BACKGROUND="true",
    )
    async with service_factory(env) as svc:
        r = await post_webhook(svc.client, envelope_bytes(participant("participant.joined", "evt-x")))
        assert r.status_code == 200
        assert r.json()["state"] == "ignored"
        await asyncio.sleep(0.5)
    assert callback_receiver.all_requests == []
