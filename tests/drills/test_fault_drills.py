"""Fault drills (issue 8): infrastructure fails while traffic flows; afterwards every webhook
that got a 200 is applied exactly once, every raw-tracks recording produced exactly one accepted
callback (by webhook-id), no meeting got two Daily starts, and /readyz is 200 again unaided.

These restart the machine's PostgreSQL and Redis: they run serially, like the whole suite."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.test_webhooks import T0, register_with
from tests.plugins.drills import postgres, redis_start, redis_stop, report
from tests.plugins.processes import Replica, replicas, spawn, wait_ready
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.s3 import DedicatedS3Bucket
from tests.plugins.service import AUTH, playback, service_env
from tests.plugins.simulator import DailySim
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("restore_services")]

ROOM = "drill-room"
SEND_PAUSE_S = 0.05
MEETING = "drill-meeting"


@dataclass
class Traffic:
    sent: int = 0
    sent_recordings: set[str] = field(default_factory=set)
    acknowledged: dict[str, str] = field(default_factory=dict)  # event id -> Daily recording id
    refused: int = 0


def drill_env(
    db_url: str, receiver: CallbackReceiver, redis_url: str, prefix: str, **over: str
) -> dict[str, str]:
    env = service_env(
        db_url,
        RECORDER_REDIS_URL=redis_url,
        RECORDER_REDIS_PREFIX=prefix,
        RECORDER_BACKGROUND="true",
        RECORDER_CALLBACK_URL=receiver.url,
        RECORDER_CALLBACK_SECRET=receiver.secret,
        RECORDER_S3_BUCKET="drill-bucket",
        RECORDER_CALLBACK_RETRY_SECONDS=",".join(["0.3"] * 60),
        RECORDER_CALLBACK_TIMEOUT_SECONDS="2",
        RECORDER_INBOX_SWEEP_SECONDS="1",
        # A killed process's leases must expire before its callbacks can go out again.
        RECORDER_OUTBOX_LEASE_SECONDS="5",
        RECORDER_RECONCILE_INTERVAL_SECONDS="3600",
        RECORDER_LOG_LEVEL="WARNING",
    )
    return env | {k if k.startswith("RECORDER_") else f"RECORDER_{k.upper()}": v for k, v in over.items()}


async def register(url: str) -> None:
    """The drill meeting started at T0 (the webhooks' recordings) and is still on: starts
    are refused once a meeting has ended, whatever the day the suite runs."""
    still_on_h = (datetime.now(UTC) - T0).total_seconds() / 3600 + 2
    async with httpx.AsyncClient(base_url=url) as client:
        await register_with(client, MEETING, room=ROOM, hours=max(10, still_on_h))


async def send_webhooks(
    url: Callable[[], str], traffic: Traffic, stop: asyncio.Event, *, senders: int = 4
) -> None:
    async def sender(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            n = traffic.sent
            traffic.sent += 1
            start_ts = T0.timestamp() + 60 + n
            payload = ready_payload(
                room=ROOM, start_ts=start_ts, type_="raw-tracks", tracks=raw_tracks(ROOM, start_ts)
            )
            body = envelope("recording.ready-to-download", payload, event_id=f"drill-{uuid.uuid4()}")
            traffic.sent_recordings.add(payload["recording_id"])
            try:
                r = await client.post(f"{url()}/v1/daily/webhook", **_signed(body))
            except httpx.HTTPError:
                traffic.refused += 1
                await asyncio.sleep(0.05)
                continue
            if r.status_code == 200:
                traffic.acknowledged[body["id"]] = payload["recording_id"]
                # Paced (≤ 80 a second from 4 senders, far above Daily's rate): a drill is about
                # faults, not throughput, and must settle within its bounded wait.
                await asyncio.sleep(SEND_PAUSE_S)
            else:
                traffic.refused += 1
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))


def _signed(body: dict[str, Any]) -> dict[str, Any]:
    import json

    from tests.plugins.service import WEBHOOK_SECRET
    from tests.support.daily_signing import daily_headers

    raw = json.dumps(body).encode()
    return {"content": raw, "headers": daily_headers(WEBHOOK_SECRET, str(int(time.time())), raw)}


@contextlib.asynccontextmanager
async def traffic_while(url: Callable[[], str]) -> AsyncIterator[Traffic]:
    traffic, stop = Traffic(), asyncio.Event()
    task = asyncio.create_task(send_webhooks(url, traffic, stop))
    try:
        yield traffic
    finally:
        stop.set()
        await task


async def settle_and_check(
    name: str, url: str, traffic: Traffic, receiver: CallbackReceiver, db_url: str, timeout_s: float = 30
) -> None:
    """Waits for the service to catch up, then checks the drill's invariants."""
    expected = set(traffic.acknowledged.values())
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await wait_ready(url, timeout_s=30)
        while True:
            recs = [
                r
                for r in (await client.get(f"/v1/meetings/{MEETING}/recordings", headers=AUTH)).json()[
                    "recordings"
                ]
                if r["type"] == "raw-tracks"
            ]
            delivered = _accepted_by_recording(receiver)
            done = {r["daily_recording_id"] for r in recs if r["status"] == "ready"} >= expected
            if done and set(delivered) >= expected:
                break
            if time.monotonic() > deadline:
                unapplied = [
                    (e["id"], e["state"], e["detail"])
                    for state in ("pending", "orphan", "unparseable")
                    for e in (
                        await client.get("/v1/daily/events", params={"state": state}, headers=AUTH)
                    ).json()["events"]
                ]
                missing = expected - {r["daily_recording_id"] for r in recs if r["status"] == "ready"}
                odd = [r for r in recs if r["status"] != "ready" or r["daily_recording_id"] not in expected]
                raise AssertionError(
                    f"{name}: not settled: {len(recs)} recordings, {len(delivered)} callbacks, "
                    f"{len(expected)} acknowledged; unapplied events: {unapplied[:5]}; "
                    f"missing: {sorted(missing)[:5]}; other recordings: {odd[:5]}"
                )
            await asyncio.sleep(0.2)
    # Straight from the inbox table: the admin listing stops at 1,000 events.
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        states: dict[str, str] = dict(
            conn.execute(
                "SELECT id, state FROM inbox_events WHERE id = ANY(%s)", (list(traffic.acknowledged),)
            ).fetchall()
        )
    # Rows without a Daily id are this drill's own start claims, not webhook effects.
    daily_ids = [r["daily_recording_id"] for r in recs if r["daily_recording_id"] is not None]
    assert len(daily_ids) == len(set(daily_ids)), f"{name}: a recording was applied twice"
    not_applied = [(i, states.get(i)) for i in traffic.acknowledged if states.get(i) != "applied"]
    assert not not_applied, f"{name}: acknowledged events not applied: {not_applied[:5]}"
    # A request cut off by a kill may be applied without its 200 arriving: Daily would redeliver
    # it, and the redelivery would be a duplicate. Nothing applied was never sent.
    assert set(daily_ids) <= traffic.sent_recordings
    assert all(len(ids) == 1 for ids in delivered.values()), f"{name}: a recording got two callbacks"
    report(
        f"{name}: sent {traffic.sent}, acknowledged {len(traffic.acknowledged)}, refused {traffic.refused}, "
        f"applied {len(daily_ids)}, callbacks accepted {len(delivered)} "
        f"(deliveries {len(receiver.accepted)})"
    )


def _accepted_by_recording(receiver: CallbackReceiver) -> dict[str, set[str]]:
    by_recording: dict[str, set[str]] = {}
    for d in receiver.accepted:
        if d.payload["type"] != "recording.raw_tracks_ready":
            continue
        by_recording.setdefault(d.payload["data"]["recording_id"], set()).add(d.webhook_id or "")
    return by_recording


async def run_drill(
    name: str,
    env: dict[str, str],
    receiver: CallbackReceiver,
    fault: Callable[[Replica], Awaitable[Replica | None]],
) -> None:
    async with replicas(env, 1) as [replica]:
        await register(replica.url)
        current = replica
        async with traffic_while(lambda: current.url) as traffic:
            await asyncio.sleep(1.0)
            replaced = await fault(current)
            if replaced is not None:
                current = replaced
            await asyncio.sleep(1.5)
        try:
            await settle_and_check(name, current.url, traffic, receiver, env["RECORDER_DATABASE_URL"])
        finally:
            if replaced is not None and replaced.process.poll() is None:
                replaced.process.terminate()
                await asyncio.to_thread(replaced.process.wait, 20)


async def test_drill_postgres_restart(
    postgres_db_url: str, callback_receiver: CallbackReceiver, redis_url: str, redis_prefix: str
) -> None:
    async def restart(_: Replica) -> None:
        await asyncio.to_thread(postgres, "restart")

    await run_drill(
        "postgres restarted",
        drill_env(postgres_db_url, callback_receiver, redis_url, redis_prefix),
        callback_receiver,
        restart,
    )


async def test_drill_sigkill_mid_burst(
    postgres_db_url: str, callback_receiver: CallbackReceiver, redis_url: str, redis_prefix: str
) -> None:
    env = drill_env(postgres_db_url, callback_receiver, redis_url, redis_prefix)

    async def kill_and_restart(replica: Replica) -> Replica:
        replica.kill()
        await asyncio.sleep(0.5)
        fresh = spawn(env, "serve", port=replica.port)
        await wait_ready(fresh.url)
        return fresh

    await run_drill("service killed (SIGKILL) and restarted", env, callback_receiver, kill_and_restart)


async def test_drill_callback_receiver_down(
    postgres_db_url: str, callback_receiver: CallbackReceiver, redis_url: str, redis_prefix: str
) -> None:
    async def outage(_: Replica) -> None:
        await callback_receiver.set_down(True)
        await asyncio.sleep(2.0)
        await callback_receiver.set_down(False)

    await run_drill(
        "callback receiver down for 2 s",
        drill_env(postgres_db_url, callback_receiver, redis_url, redis_prefix),
        callback_receiver,
        outage,
    )


async def test_drill_redis_stopped_and_started(
    postgres_db_url: str,
    callback_receiver: CallbackReceiver,
    redis_url: str,
    redis_prefix: str,
    daily_sim: DailySim,
) -> None:
    env = drill_env(
        postgres_db_url, callback_receiver, redis_url, redis_prefix, RECORDER_DAILY_API_URL=daily_sim.base_url
    )
    rooms = [f"herd-{i}" for i in range(6)]
    async with replicas(env, 2) as procs, httpx.AsyncClient(timeout=30) as client:
        await register(procs[0].url)
        for i, room in enumerate(rooms):
            r = await client.put(
                f"{procs[0].url}/v1/meetings/herd-{i}",
                headers=AUTH,
                json={
                    "room_name": room,
                    "recording_type": "cloud",
                    "start_date": T0.isoformat(),
                    "end_date": "2099-01-01T00:00:00Z",
                },
            )
            assert r.status_code == 201
            await daily_sim.join(room)
        answers: list[tuple[float, int]] = []  # (sent this long after Redis came back, or -1; status)
        back_at: list[float] = []
        done = asyncio.Event()

        async def starts(i: int) -> None:
            attempt = 0
            while not done.is_set():
                sent = time.monotonic()
                r = await client.post(
                    f"{procs[attempt % 2].url}/v1/meetings/herd-{i}/recordings/start",
                    json={"type": "raw-tracks"},
                )
                answers.append((sent - back_at[0] if back_at else -1.0, r.status_code))
                attempt += 1
                await asyncio.sleep(0.1)

        async with traffic_while(lambda: procs[0].url) as traffic:
            herd = asyncio.gather(*(starts(i) for i in range(len(rooms))))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(redis_stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(redis_start)
            back_at.append(time.monotonic())
            await asyncio.sleep(2.0)
            done.set()
            await herd
        codes = [code for _, code in answers]
        assert 503 in codes  # refused while Redis was away, rather than risk double starts
        assert set(codes) <= {200, 503}
        # Recovered without a manual step: every start sent once Redis has been back a second succeeds.
        assert {code for since, code in answers if since > 1.0} == {200}
        starts_at_daily = (await daily_sim.calls())["starts"]
        assert sorted(s["room_name"] for s in starts_at_daily) == sorted(rooms)
        assert all(s["count"] == 1 for s in starts_at_daily)
        await settle_and_check(
            "redis stopped and started", procs[0].url, traffic, callback_receiver, postgres_db_url
        )
        report(
            f"redis stopped and started: {len(codes)} start calls ({codes.count(503)} refused with 503), "
            f"{len(starts_at_daily)} Daily starts for {len(rooms)} meetings"
        )


async def test_drill_daily_slow_then_failing(
    postgres_db_url: str,
    callback_receiver: CallbackReceiver,
    redis_url: str,
    redis_prefix: str,
    daily_sim: DailySim,
) -> None:
    env = drill_env(
        postgres_db_url,
        callback_receiver,
        redis_url,
        redis_prefix,
        RECORDER_DAILY_API_URL=daily_sim.base_url,
        RECORDER_DAILY_TIMEOUT_SECONDS="1",
        RECORDER_DAILY_MAX_ATTEMPTS="2",
    )
    async with replicas(env, 1) as [svc], httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        await register(svc.url)
        await daily_sim.join(ROOM)
        async with traffic_while(lambda: svc.url) as traffic:
            await daily_sim.latency("start_recording", 5.0)
            slow = await client.post(f"/v1/meetings/{MEETING}/recordings/start", json={"type": "raw-tracks"})
            await daily_sim.latency("start_recording", 0)
            await daily_sim.fault("start_recording", status=500, count=2)
            failing = await client.post(
                f"/v1/meetings/{MEETING}/recordings/start", json={"type": "raw-tracks"}
            )
        assert (slow.status_code, failing.status_code) == (502, 502), (slow.text, failing.text)
        recovered = await client.post(f"/v1/meetings/{MEETING}/recordings/start", json={"type": "raw-tracks"})
        assert recovered.json()["status"] == "started"
        await settle_and_check(
            "Daily slow (5 s) then failing (500)", svc.url, traffic, callback_receiver, postgres_db_url
        )
        # The slow attempts may have started a recording at Daily; never more than one success.
        assert (await daily_sim.calls())["operations"]["start_recording"].get("200", 0) <= 3


async def test_drill_s3_down(
    postgres_db_url: str,
    callback_receiver: CallbackReceiver,
    redis_url: str,
    redis_prefix: str,
    s3_dedicated: DedicatedS3Bucket,
) -> None:
    env = drill_env(
        postgres_db_url,
        callback_receiver,
        redis_url,
        redis_prefix,
        RECORDER_S3_BUCKET=s3_dedicated.bucket,
        RECORDER_S3_ENDPOINT_URL=s3_dedicated.endpoint_url,
    )
    async with replicas(env, 1) as [svc], httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        await register(svc.url)
        await s3_dedicated.put("drill/cloud", b"video")
        await post_webhook(
            client,
            envelope(
                "recording.ready-to-download",
                ready_payload(room=ROOM, start_ts=T0.timestamp() + 5, s3_key="drill/cloud"),
            ),
        )
        assert (
            await client.get(f"/v1/meetings/{MEETING}/cloud-recording", params=playback(MEETING))
        ).status_code == 307
        async with traffic_while(lambda: svc.url) as traffic:
            await s3_dedicated.stop()
            await asyncio.sleep(1.5)
            during = await client.get(f"/v1/meetings/{MEETING}/cloud-recording", params=playback(MEETING))
            await s3_dedicated.start()
        assert during.status_code == 503
        await asyncio.sleep(1.1)
        assert (
            await client.get(f"/v1/meetings/{MEETING}/cloud-recording", params=playback(MEETING))
        ).status_code == 307
        await settle_and_check("S3 down", svc.url, traffic, callback_receiver, postgres_db_url)
