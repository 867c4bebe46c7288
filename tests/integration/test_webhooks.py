"""Daily webhook ingest (contract §6): signatures, durable inbox, idempotent effects, matching."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.plugins.service import AUTH, WEBHOOK_SECRET, RunningService, ServiceFactory, service_env
from tests.support.daily_signing import daily_headers
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload, until_applied

ROOM = "standup-7f3a9c"
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


async def register_with(
    client: httpx.AsyncClient, meeting_id: str, *, room: str = ROOM, start: datetime = T0, hours: float = 1
) -> None:
    """Registers a cloud-recorded meeting through the internal API (any client, any process)."""
    body = {
        "room_name": room,
        "recording_type": "cloud",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(hours=hours)).isoformat(),
    }
    r = await client.put(f"/v1/meetings/{meeting_id}", json=body, headers=AUTH)
    assert r.status_code in (200, 201), r.text


async def register(
    svc: RunningService, meeting_id: str, *, room: str = ROOM, start: datetime = T0, hours: float = 1
) -> None:
    await register_with(svc.client, meeting_id, room=room, start=start, hours=hours)


async def events(svc: RunningService, state: str | None = None) -> list[dict[str, Any]]:
    r = await svc.client.get("/v1/daily/events", params={"state": state} if state else {}, headers=AUTH)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["events"]
    return result


async def meeting(svc: RunningService, meeting_id: str) -> dict[str, Any]:
    r = await svc.client.get(f"/v1/meetings/{meeting_id}/recordings", headers=AUTH)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def callbacks(svc: RunningService) -> list[dict[str, Any]]:
    r = await svc.client.get("/v1/callbacks", headers=AUTH)
    result: list[dict[str, Any]] = r.json()["callbacks"]
    return result


@pytest.fixture
async def svc(db_url: str, service_factory: ServiceFactory) -> Any:
    async with service_factory(service_env(db_url, RECORDER_S3_BUCKET="recordings")) as running:
        yield running


# ---------------------------------------------------------------- signatures and storage


def _fixture_example() -> dict[str, Any]:
    from tests.support.paths import DAILY_FIXTURES

    data: dict[str, Any] = json.loads((DAILY_FIXTURES / "webhook-signature-example.json").read_text())
    return data


async def test_secret_rotation_accepts_any_configured_secret(
    db_url: str, service_factory: ServiceFactory
) -> None:
    example = _fixture_example()
    env = service_env(
        db_url, RECORDER_DAILY_WEBHOOK_SECRETS=f"{WEBHOOK_SECRET},{example['hmac_secret_base64']}"
    )
    async with service_factory(env) as running:
        r = await running.client.post(
            "/v1/daily/webhook", content=example["raw_body"].encode(), headers=example["headers"]
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "stored"
        r = await running.client.post(
            "/v1/daily/webhook", content=example["tampered_raw_body"].encode(), headers=example["headers"]
        )
        assert r.status_code == 401
        assert [e["id"] for e in await events(running)] == [json.loads(example["raw_body"])["id"]]


@pytest.mark.parametrize(
    "case",
    [
        "tampered",
        "wrong_secret",
        "no_signature",
        "no_timestamp",
        "not_base64",
        "empty_body",
        "wrong_timestamp",
    ],
)
async def test_bad_signatures_are_401_and_store_nothing(svc: RunningService, case: str) -> None:
    body = json.dumps(
        envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=T0.timestamp()))
    ).encode()
    ts = str(int(time.time()))
    headers = daily_headers(WEBHOOK_SECRET, ts, body)
    if case == "tampered":
        body = body.replace(b"1834", b"1835")
    elif case == "wrong_secret":
        headers = daily_headers(base64.b64encode(b"another secret").decode(), ts, body)
    elif case == "no_signature":
        del headers["X-Webhook-Signature"]
    elif case == "no_timestamp":
        del headers["X-Webhook-Timestamp"]
    elif case == "not_base64":
        headers["X-Webhook-Signature"] = "%%%not-base64%%%"
    elif case == "empty_body":
        body = b""
    elif case == "wrong_timestamp":
        headers["X-Webhook-Timestamp"] = str(int(ts) + 1)
    r = await svc.client.post("/v1/daily/webhook", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["status_code"] == 401
    assert await events(svc) == []


async def test_dailys_verification_request_is_200_signed_or_not(svc: RunningService) -> None:
    r = await svc.client.post(
        "/v1/daily/webhook", content=b'{"test": "test"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["status"] == "verification"
    r = await post_webhook(svc.client, {"test": "test"})
    assert r.status_code == 200
    assert await events(svc) == []


async def test_oversize_body_is_413_and_stores_nothing(svc: RunningService) -> None:
    body = b'{"id": "big", "type": "x", "pad": "' + b"x" * (1 << 20) + b'"}'
    r = await post_webhook(svc.client, body)
    assert r.status_code == 413
    assert await events(svc) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe not utf-8", "unparseable"),
        (b"[1, 2, 3]", "unparseable"),
        (b"not json at all", "unparseable"),
        (
            json.dumps(
                envelope(
                    "recording.ready-to-download",
                    {k: v for k, v in ready_payload(room=ROOM, start_ts=1.0).items() if k != "s3_key"},
                    "evt-no-key",
                )
            ).encode(),
            "unparseable",
        ),
        (
            json.dumps(
                envelope(
                    "recording.ready-to-download",
                    ready_payload(room=ROOM, start_ts=1.0, duration=-5),
                    "evt-neg",
                )
            ).encode(),
            "unparseable",
        ),
        (
            json.dumps(
                envelope(
                    "recording.ready-to-download",
                    ready_payload(room=ROOM, start_ts=1.0, duration=10**9),
                    "evt-absurd",
                )
            ).encode(),
            "unparseable",
        ),
        (
            json.dumps(
                envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=1e20), "evt-far")
            ).encode(),
            "unparseable",
        ),
        (json.dumps(envelope("brand.new-event", {"x": 1}, "evt-new")).encode(), "ignored"),
        (
            json.dumps(
                envelope("participant.joined", {"room": ROOM, "session_id": "s", "joined_at": 1.5}, "evt-pj")
            ).encode(),
            "ignored",
        ),
    ],
)
async def test_signed_but_odd_events_are_stored_and_answered_200(
    svc: RunningService, body: bytes, reason: str
) -> None:
    r = await post_webhook(svc.client, body)
    assert r.status_code == 200, r.text
    [stored] = await events(svc)
    assert stored["state"] == reason
    # Nothing half applied: no recording exists anywhere.
    assert await callbacks(svc) == []


async def test_database_down_is_503_so_daily_retries(service_factory: ServiceFactory) -> None:
    env = service_env("postgresql+psycopg://postgres@127.0.0.1:1/none")
    async with service_factory(env) as running:
        body = envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=T0.timestamp()))
        r = await post_webhook(running.client, body)
        assert r.status_code == 503
        assert "database" in r.json()["detail"]
        assert "postgres" not in r.json()["detail"]


# ---------------------------------------------------------------- effects


async def test_cloud_ready_makes_the_recording_available(svc: RunningService) -> None:
    await register(svc, "m-1")
    payload = ready_payload(room=ROOM, start_ts=T0.timestamp() + 60.7, duration=323.9)
    r = await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
    assert r.json()["state"] == "applied"
    m = await meeting(svc, "m-1")
    assert m["cloud_recording_available"] is True
    assert m["cloud_recording_duration"] == 323
    [rec] = m["recordings"]
    assert rec["status"] == "ready"
    assert rec["s3_key"] == payload["s3_key"]
    assert rec["daily_recording_id"] == payload["recording_id"]
    assert [c["event_type"] for c in await callbacks(svc)] == ["recording.cloud_ready"]
    r = await svc.client.get(
        "/v1/recordings/availability", params={"meeting_id": ["m-1", "m-2"]}, headers=AUTH
    )
    assert r.json()["meetings"] == {
        "m-1": {"cloud_recording_available": True, "cloud_recording_duration": 323},
        "m-2": {"cloud_recording_available": False, "cloud_recording_duration": None},
    }


async def test_raw_tracks_ready_queues_one_callback_with_audio_keys_in_order(svc: RunningService) -> None:
    await register(svc, "m-1")
    start_ts = T0.timestamp() + 5
    tracks = raw_tracks(ROOM, start_ts)
    payload = ready_payload(room=ROOM, start_ts=start_ts, type_="raw-tracks", tracks=tracks)
    await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
    [rec] = (await meeting(svc, "m-1"))["recordings"]
    assert rec["type"] == "raw-tracks"
    assert rec["status"] == "ready"
    assert [t["s3_key"] for t in rec["tracks"]] == [t["s3Key"] for t in tracks]
    [cb] = await callbacks(svc)
    assert cb["event_type"] == "recording.raw_tracks_ready"
    assert cb["state"] == "pending"
    assert (await meeting(svc, "m-1"))["cloud_recording_available"] is False


async def test_raw_tracks_with_null_tracks_is_ready_without_tracks(svc: RunningService) -> None:
    await register(svc, "m-1")
    payload = ready_payload(room=ROOM, start_ts=T0.timestamp(), type_="raw-tracks", tracks=None)
    r = await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
    assert r.json()["state"] == "applied"
    [rec] = (await meeting(svc, "m-1"))["recordings"]
    assert rec["status"] == "ready"
    assert rec["tracks"] == []
    assert rec["error"] == "Daily reported no tracks"


async def test_five_redeliveries_have_one_effect(svc: RunningService) -> None:
    await register(svc, "m-1")
    body = envelope(
        "recording.ready-to-download",
        ready_payload(
            room=ROOM, start_ts=T0.timestamp(), type_="raw-tracks", tracks=raw_tracks(ROOM, T0.timestamp())
        ),
    )
    answers = [await post_webhook(svc.client, body) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["status"] for a in answers] == ["stored"] + ["duplicate"] * 4
    assert len((await meeting(svc, "m-1"))["recordings"]) == 1
    assert len(await callbacks(svc)) == 1


async def test_concurrent_redeliveries_have_one_effect(svc: RunningService) -> None:
    await register(svc, "m-1")
    body = envelope(
        "recording.ready-to-download",
        ready_payload(
            room=ROOM, start_ts=T0.timestamp(), type_="raw-tracks", tracks=raw_tracks(ROOM, T0.timestamp())
        ),
    )
    answers = await asyncio.gather(*(post_webhook(svc.client, body) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 4 + ["stored"]
    await until_applied(svc.client)
    assert len((await meeting(svc, "m-1"))["recordings"]) == 1
    assert len(await callbacks(svc)) == 1


async def test_same_recording_under_a_new_event_id_has_one_effect(svc: RunningService) -> None:
    await register(svc, "m-1")
    payload = ready_payload(
        room=ROOM, start_ts=T0.timestamp(), type_="raw-tracks", tracks=raw_tracks(ROOM, T0.timestamp())
    )
    for _ in range(2):
        await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
    assert len((await meeting(svc, "m-1"))["recordings"]) == 1
    assert len(await callbacks(svc)) == 1


async def test_room_name_reuse_matches_the_meeting_whose_window_holds_the_start(svc: RunningService) -> None:
    await register(svc, "monday", start=T0)
    await register(svc, "tuesday", start=T0 + timedelta(days=1))
    tuesday_rec = ready_payload(room=ROOM, start_ts=(T0 + timedelta(days=1, minutes=3)).timestamp())
    monday_rec = ready_payload(room=ROOM, start_ts=(T0 + timedelta(minutes=-5)).timestamp())  # joined early
    await post_webhook(svc.client, envelope("recording.ready-to-download", tuesday_rec))
    await post_webhook(svc.client, envelope("recording.ready-to-download", monday_rec))
    assert [r["daily_recording_id"] for r in (await meeting(svc, "tuesday"))["recordings"]] == [
        tuesday_rec["recording_id"]
    ]
    assert [r["daily_recording_id"] for r in (await meeting(svc, "monday"))["recordings"]] == [
        monday_rec["recording_id"]
    ]


async def test_overlapping_windows_pick_the_closest_meeting_start(svc: RunningService) -> None:
    await register(svc, "early", start=T0, hours=2)
    await register(svc, "late", start=T0 + timedelta(minutes=90), hours=2)
    rec = ready_payload(room=ROOM, start_ts=(T0 + timedelta(minutes=85)).timestamp())
    await post_webhook(svc.client, envelope("recording.ready-to-download", rec))
    assert len((await meeting(svc, "late"))["recordings"]) == 1
    assert (await meeting(svc, "early"))["recordings"] == []


async def test_event_before_its_meeting_is_kept_and_applied_on_registration(svc: RunningService) -> None:
    payload = ready_payload(
        room=ROOM, start_ts=T0.timestamp() + 30, type_="raw-tracks", tracks=raw_tracks(ROOM, T0.timestamp())
    )
    r = await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
    assert r.status_code == 200
    assert r.json()["state"] == "orphan"
    assert [e["state"] for e in await events(svc)] == ["orphan"]
    await register(svc, "m-late")
    assert [e["state"] for e in await events(svc)] == ["applied"]
    assert len((await meeting(svc, "m-late"))["recordings"]) == 1
    assert len(await callbacks(svc)) == 1


async def test_an_event_outside_every_window_stays_orphan(svc: RunningService) -> None:
    await register(svc, "m-1")
    far = ready_payload(room=ROOM, start_ts=(T0 + timedelta(hours=5)).timestamp())
    r = await post_webhook(svc.client, envelope("recording.ready-to-download", far))
    assert r.json()["state"] == "orphan"
    assert (await meeting(svc, "m-1"))["recordings"] == []


async def test_started_then_error_by_instance_id(svc: RunningService) -> None:
    meeting_id = "0f8e4d2c-6a1b-4c3d-9e7f-112233445566"
    await register(svc, meeting_id)
    started = {
        "recording_id": "rec-1",
        "action": "start-cloud-recording",
        "instance_id": meeting_id,
        "start_ts": T0.timestamp() + 1,
        "started_by": "p1",
        "layout": {"preset": "default"},
    }
    r = await post_webhook(svc.client, envelope("recording.started", started))
    assert r.json()["state"] == "applied"
    [rec] = (await meeting(svc, meeting_id))["recordings"]
    assert (rec["status"], rec["daily_recording_id"], rec["type"]) == ("recording", "rec-1", "cloud")
    error = {
        "action": "clourd-recording-err",
        "error_msg": "layout failed",
        "instance_id": meeting_id,
        "room_name": ROOM,
        "timestamp": T0.timestamp() + 99.5,
    }
    await post_webhook(svc.client, envelope("recording.error", error))
    [rec] = (await meeting(svc, meeting_id))["recordings"]
    assert (rec["status"], rec["error"]) == ("failed", "layout failed")


async def test_browser_started_cloud_recording_is_recognised(svc: RunningService) -> None:
    # daily-js started it with the meeting UUID as instanceId; the service never saw a start call.
    meeting_id = "9b2f6a41-7c3b-4d18-a5e0-6b8f2d94c1a7"
    await register(svc, meeting_id)
    payload = ready_payload(room=ROOM, start_ts=T0.timestamp() + 120)
    await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
    m = await meeting(svc, meeting_id)
    assert m["cloud_recording_available"] is True
    assert m["recordings"][0]["type"] == "cloud"


async def test_started_for_unknown_instance_is_orphan_until_registered(svc: RunningService) -> None:
    meeting_id = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    started = {"recording_id": "rec-9", "instance_id": meeting_id, "start_ts": T0.timestamp()}
    r = await post_webhook(svc.client, envelope("recording.started", started))
    assert r.json()["state"] == "orphan"
    # No room_name in recording.started: registration retries it, matched by the meeting UUID.
    await register(svc, meeting_id)
    [rec] = (await meeting(svc, meeting_id))["recordings"]
    assert (rec["daily_recording_id"], rec["status"]) == ("rec-9", "recording")
