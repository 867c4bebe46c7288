"""Callbacks to Reflector (contract §7): signed, at least once, retried, surviving restarts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.test_webhooks import ROOM, T0, register, register_with
from tests.plugins.processes import replicas
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload


def callback_env(db_url: str, receiver: CallbackReceiver, **over: str) -> dict[str, str]:
    defaults = {
        "RECORDER_CALLBACK_URL": receiver.url,
        "RECORDER_CALLBACK_SECRET": receiver.secret,
        "RECORDER_BACKGROUND": "true",
        "RECORDER_S3_BUCKET": "recordings-bucket",
        "RECORDER_CALLBACK_RETRY_SECONDS": "0.2,0.2,0.2,0.2",
        "RECORDER_CALLBACK_TIMEOUT_SECONDS": "1",
        "RECORDER_RECONCILE_INTERVAL_SECONDS": "3600",
    }
    return service_env(db_url, **(defaults | over))


async def raw_tracks_ready(
    client: Any, start_offset_s: float = 5, room: str = ROOM, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    start_ts = T0.timestamp() + start_offset_s
    payload = ready_payload(
        room=room, start_ts=start_ts, type_="raw-tracks", tracks=raw_tracks(room, start_ts)
    )
    r = await post_webhook(client, envelope("recording.ready-to-download", payload), headers=headers)
    assert r.status_code == 200, r.text
    return payload


async def callback_rows(svc: RunningService, state: str | None = None) -> list[dict[str, Any]]:
    r = await svc.client.get("/v1/callbacks", params={"state": state} if state else {}, headers=AUTH)
    result: list[dict[str, Any]] = r.json()["callbacks"]
    return result


async def wait_state(
    svc: RunningService, state: str, count: int = 1, timeout_s: float = 10
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        rows = await callback_rows(svc, state)
        if len(rows) >= count:
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected {count} {state} callbacks, have {await callback_rows(svc)}")
        await asyncio.sleep(0.05)


async def test_raw_tracks_callback_is_delivered_signed_with_the_contract_body(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    async with service_factory(callback_env(db_url, callback_receiver)) as svc:
        await register(svc, "m-1")
        payload = await raw_tracks_ready(svc.client)
        [delivery] = await callback_receiver.wait_for(1, timeout_s=2)  # woken, not polled
        assert delivery.signature_valid
        body = delivery.payload
        assert body["type"] == "recording.raw_tracks_ready"
        assert body["timestamp"].endswith("Z")
        data = body["data"]
        assert data["meeting_id"] == "m-1"
        assert data["room_name"] == ROOM
        assert data["recording_id"] == payload["recording_id"]
        assert data["bucket"] == "recordings-bucket"
        assert data["track_keys"] == [t["s3Key"] for t in payload["tracks"] if t["type"] == "audio"]
        assert [t["s3_key"] for t in data["tracks"]] == [t["s3Key"] for t in payload["tracks"]]
        assert data["start_ts"] == int(payload["start_ts"])
        assert data["duration"] == 1834
        [row] = await wait_state(svc, "delivered")
        assert row["id"] == delivery.webhook_id
        assert row["attempts"] == 1


async def test_cloud_recordings_are_announced_too(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    async with service_factory(callback_env(db_url, callback_receiver)) as svc:
        await register(svc, "m-1")
        await post_webhook(
            svc.client,
            envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=T0.timestamp() + 9)),
        )
        [delivery] = await callback_receiver.wait_for(1)
        assert delivery.payload["type"] == "recording.cloud_ready"
        assert delivery.payload["data"]["s3_key"].startswith("acme/")


async def test_receiver_500_three_times_then_200_keeps_one_webhook_id(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    callback_receiver.fail_next(3, status=500)
    async with service_factory(callback_env(db_url, callback_receiver)) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        await callback_receiver.wait_for(1, timeout_s=10)
        ids = {r.webhook_id for r in callback_receiver.all_requests}
        assert len(callback_receiver.all_requests) == 4
        assert len(ids) == 1
        assert [r.status for r in callback_receiver.all_requests] == [500, 500, 500, 200]
        [row] = await wait_state(svc, "delivered")
        assert row["attempts"] == 4
        # Each attempt has its row, recorded with the callback's outcome.
        engine = svc.app_state.resources.db.engine  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            attempts = (
                await conn.execute(
                    text(
                        "SELECT status_code, error, duration_ms FROM callback_attempts"
                        " WHERE callback_id = :id ORDER BY attempted_at, id"
                    ),
                    {"id": row["id"]},
                )
            ).all()
        assert [a.status_code for a in attempts] == [500, 500, 500, 200]
        assert all(a.error.startswith("HTTP 500") for a in attempts[:3]) and attempts[3].error is None
        assert all(a.duration_ms >= 0 for a in attempts)


async def test_slow_receiver_times_out_and_is_retried(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    callback_receiver.delay_next(1, 3.0)
    async with service_factory(callback_env(db_url, callback_receiver)) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        await callback_receiver.wait_for(1, timeout_s=10)
        [row] = await wait_state(svc, "delivered")
        assert row["attempts"] == 2
        assert len(callback_receiver.accepted) == 1


async def test_retry_after_is_honoured(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    callback_receiver.fail_next(1, status=429, headers={"Retry-After": "1"})
    async with service_factory(callback_env(db_url, callback_receiver)) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        await callback_receiver.wait_for(1, timeout_s=10)
        first, second = callback_receiver.all_requests
        assert second.received_at - first.received_at >= 0.95


async def test_spent_schedule_is_dead_and_the_admin_retry_redelivers(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    callback_receiver.respond_with(503)
    env = callback_env(db_url, callback_receiver, RECORDER_CALLBACK_RETRY_SECONDS="0.1,0.1")
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        [dead] = await wait_state(svc, "dead")
        assert dead["attempts"] == 3
        assert dead["last_status_code"] == 503
        assert "503" in dead["last_error"]
        callback_receiver.respond_with(None)
        r = await svc.client.post(f"/v1/callbacks/{dead['id']}/retry", headers=AUTH)
        assert r.status_code == 202
        await callback_receiver.wait_for(1)
        assert (await wait_state(svc, "delivered"))[0]["id"] == dead["id"]
        assert (await svc.client.post("/v1/callbacks/nope/retry", headers=AUTH)).status_code == 404
        assert (
            await svc.client.get("/v1/callbacks", params={"state": "bogus"}, headers=AUTH)
        ).status_code == 400
        assert (await svc.client.get("/v1/callbacks")).status_code == 401


async def test_a_redirect_is_not_followed_and_an_unreachable_receiver_is_named(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    """Only a 2xx delivers: a 307 (even to the receiver itself) is a refusal, one request per
    attempt; a receiver that is down is recorded as unreachable, without a status code."""
    callback_receiver.respond_with(307, headers={"Location": callback_receiver.url})
    env = callback_env(db_url, callback_receiver, RECORDER_CALLBACK_RETRY_SECONDS="0.1,0.1")
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        [dead] = await wait_state(svc, "dead")
        assert (dead["attempts"], dead["last_status_code"]) == (3, 307)
        assert dead["last_error"].startswith("HTTP 307")
        assert [r.status for r in callback_receiver.all_requests] == [307, 307, 307]
        await callback_receiver.set_down(True)
        r = await svc.client.post(f"/v1/callbacks/{dead['id']}/retry", headers=AUTH)
        assert r.status_code == 202
        await asyncio.sleep(0.2)  # the retry was taken and failed again
        [dead] = await wait_state(svc, "dead")
        assert dead["last_status_code"] is None
        assert dead["last_error"].startswith("unreachable (")
        assert len(callback_receiver.all_requests) == 3
        await callback_receiver.set_down(False)
        callback_receiver.respond_with(None)
        assert (await svc.client.post(f"/v1/callbacks/{dead['id']}/retry", headers=AUTH)).status_code == 202
        await callback_receiver.wait_for(1)
        assert (await wait_state(svc, "delivered"))[0]["id"] == dead["id"]


@pytest.mark.slow
async def test_a_connection_the_receiver_closed_when_idle_is_not_a_failed_attempt(
    db_url: str, callback_receiver: CallbackReceiver, service_factory: ServiceFactory
) -> None:
    """The receiver (uvicorn, as Reflector runs) closes an idle keep-alive connection after 5 s;
    the next callback goes out on a new one, delivered at its first attempt."""
    async with service_factory(callback_env(db_url, callback_receiver)) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        await callback_receiver.wait_for(1)
        await asyncio.sleep(6)  # past uvicorn's keep-alive timeout (5 s)
        await raw_tracks_ready(svc.client, start_offset_s=3600)
        await callback_receiver.wait_for(2)
        rows = await wait_state(svc, "delivered", count=2)
        assert [r["attempts"] for r in rows] == [1, 1]
        assert len(callback_receiver.all_requests) == 2


async def test_without_a_callback_url_callbacks_stay_pending(
    db_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, RECORDER_BACKGROUND="true")) as svc:
        await register(svc, "m-1")
        await raw_tracks_ready(svc.client)
        await asyncio.sleep(0.5)
        [row] = await callback_rows(svc)
        assert (row["state"], row["attempts"]) == ("pending", 0)


@pytest.mark.slow
async def test_killed_process_loses_no_callback(
    postgres_db_url: str, callback_receiver: CallbackReceiver
) -> None:
    await callback_receiver.set_down(True)
    env = callback_env(
        postgres_db_url, callback_receiver, RECORDER_CALLBACK_RETRY_SECONDS="0.3," * 30 + "0.3"
    )
    async with replicas(env, 1) as [first]:
        import httpx

        async with httpx.AsyncClient(base_url=first.url) as client:
            await register_with(client, "m-1")
            await raw_tracks_ready(client)
            for _ in range(100):
                rows = (await client.get("/v1/callbacks", headers=AUTH)).json()["callbacks"]
                if rows and rows[0]["attempts"] >= 1:
                    break
                await asyncio.sleep(0.05)
            assert rows[0]["state"] == "pending"
        first.kill()
    await callback_receiver.set_down(False)
    async with replicas(env, 1):
        [delivery] = await callback_receiver.wait_for(1, timeout_s=15)
        assert delivery.payload["data"]["meeting_id"] == "m-1"


@pytest.mark.slow
async def test_two_replicas_deliver_each_callback_once(
    postgres_db_url: str, callback_receiver: CallbackReceiver
) -> None:
    import httpx

    callback_receiver.delay_next(1000, 0.02)  # keep deliveries overlapping between replicas
    env = callback_env(postgres_db_url, callback_receiver, RECORDER_OUTBOX_BATCH_SIZE="5")
    async with replicas(env, 2) as procs, httpx.AsyncClient(base_url=procs[0].url) as client:
        await register_with(client, "m-1")
        for i in range(20):
            await raw_tracks_ready(client, start_offset_s=i * 60 + 1)
        await callback_receiver.wait_for(20, timeout_s=20)
        await asyncio.sleep(1.0)  # any double delivery would arrive by now
        accepted_ids = [d.webhook_id for d in callback_receiver.accepted]
        assert len(accepted_ids) == 20
        assert len(set(accepted_ids)) == 20
        assert len(callback_receiver.all_requests) == 20
