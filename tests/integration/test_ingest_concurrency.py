"""Concurrent webhook ingest: inbox writes coalesced into one INSERT, applies queued beside the
server, and concurrent applies that must never share one recording session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from recorder_service.adapters.daily.events import RecordingStartedPayload
from recorder_service.adapters.db.engine import create_engine, session_factory
from recorder_service.adapters.db.inbox import InboxRecord
from recorder_service.adapters.db.inbox_writer import InboxWriter
from recorder_service.adapters.db.tables import MeetingRow
from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.core.models import Recording, RecordingReady, instance_id_for
from recorder_service.core.statuses import RecordingStatus
from recorder_service.errors import StorageUnavailable
from recorder_service.services.effects import apply_ready, apply_started
from recorder_service.services.ingest import apply_events, inbox_row_for, pending_event_ids
from recorder_service.workers.apply_queue import BATCH, ApplyQueue
from tests.integration.test_webhooks import ROOM, T0, callbacks, meeting, register
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.support.recordings import own_session
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload, until_applied

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    engine = create_engine(url)
    try:
        yield Database(engine, session_factory(engine))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def inbox_writer(url: str) -> AsyncIterator[tuple[Database, InboxWriter]]:
    async with database(url) as db:
        writer = InboxWriter(db.engine)
        try:
            yield db, writer
        finally:
            await writer.close()


def inbox_row(event_id: str, **over: Any) -> InboxRecord:
    values: dict[str, Any] = {
        "id": event_id,
        "event_type": "recording.ready-to-download",
        "state": "pending",
        "body": b"{}",
        "received_at": NOW,
    }
    return InboxRecord(**(values | over))


async def stored_ids(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return {str(r[0]) for r in (await conn.execute(text("SELECT id FROM inbox_events"))).all()}


# ---------------------------------------------------------------- InboxWriter


async def test_concurrent_stores_share_one_insert(db_url: str) -> None:
    async with inbox_writer(db_url) as (db, writer):
        ids = [f"evt-{n}" for n in range(50)]
        results = await asyncio.gather(*(writer.store(inbox_row(i)) for i in ids))
        assert results == [True] * 50
        assert writer.batches <= 2  # one per request would be 50
        assert await stored_ids(db) == set(ids)


async def test_a_lone_store_is_written_at_once(db_url: str) -> None:
    async with inbox_writer(db_url) as (db, writer):
        assert await writer.store(inbox_row("evt-alone")) is True
        assert writer.batches == 1
        assert await stored_ids(db) == {"evt-alone"}


async def test_one_id_twice_in_a_batch_and_again_later_is_stored_once(db_url: str) -> None:
    async with inbox_writer(db_url) as (db, writer):
        first, second = await asyncio.gather(
            writer.store(inbox_row("evt-dup", body=b'{"n":1}')),
            writer.store(inbox_row("evt-dup", body=b'{"n":2}')),
        )
        assert (first, second) == (True, False)
        assert await writer.store(inbox_row("evt-dup")) is False
        async with db.transaction() as uow:
            kept = await uow.inbox.lock("evt-dup")
        assert kept is not None and kept.body == b'{"n":1}'  # the first delivery's body


async def test_a_refused_row_fails_alone_not_its_batch(postgres_db_url: str) -> None:
    async with inbox_writer(postgres_db_url) as (db, writer):
        # Longer than the column: PostgreSQL refuses the row (ingest never builds such a row).
        good_a, bad, good_b = await asyncio.gather(
            writer.store(inbox_row("evt-a")),
            writer.store(inbox_row("evt-bad", event_type="x" * 500)),
            writer.store(inbox_row("evt-b")),
            return_exceptions=True,
        )
        assert (good_a, good_b) == (True, True)
        assert isinstance(bad, Exception)
        assert await stored_ids(db) == {"evt-a", "evt-b"}


async def test_database_down_fails_every_waiting_store() -> None:
    async with inbox_writer("postgresql+psycopg://postgres@127.0.0.1:1/nowhere") as (_db, writer):
        results = await asyncio.gather(
            *(writer.store(inbox_row(f"evt-{n}")) for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, StorageUnavailable) for r in results), results


async def test_a_broken_connection_is_replaced_and_the_batch_sent_again(
    postgres_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer's own connection dies (as in a database restart): the next store succeeds."""
    async with inbox_writer(postgres_db_url) as (db, writer):
        assert await writer.store(inbox_row("evt-before")) is True
        async with db.engine.connect() as admin:
            killed = await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
                )
            )
            assert killed.all()  # the writer's idle connection was among them
        assert await writer.store(inbox_row("evt-after")) is True
        assert "inbox writer connection lost" in caplog.text
        assert await stored_ids(db) == {"evt-before", "evt-after"}


# ---------------------------------------------------------------- concurrent applies


def ready(daily_id: str, start_ts: float) -> RecordingReady:
    return RecordingReady(
        daily_recording_id=daily_id,
        room_name="race-room",
        recording_type="raw-tracks",
        audio_only=False,
        start_ts=int(start_ts),
        duration=60,
        s3_key=None,
        tracks=(),
    )


async def test_two_concurrent_applies_never_name_one_session(postgres_db_url: str) -> None:
    """Both readies see the one unnamed session; the second must wait and then record its own
    session, not overwrite the first (found by the Daily drill once applies ran in parallel)."""
    start = T0.timestamp()
    async with database(postgres_db_url) as db:
        async with db.transaction() as uow:
            uow.session.add(
                MeetingRow(
                    id="race-meeting",
                    room_name="race-room",
                    recording_type="raw-tracks",
                    start_date=T0,
                    end_date=T0 + timedelta(hours=1),
                )
            )
            await uow.recordings.insert(
                Recording(
                    id=str(uuid.uuid4()),
                    meeting_id="race-meeting",
                    type="raw-tracks",
                    status=RecordingStatus.RECORDING,
                    room_name="race-room",
                    started_at=T0,
                )
            )
        async with db.transaction() as first_tx:
            first = await apply_ready(first_tx, ready("daily-a", start + 5), bucket=None, now=NOW)
            # The second apply runs while the first one's transaction is still open.
            second_task = asyncio.create_task(_apply_alone(db, ready("daily-b", start + 6)))
            await asyncio.sleep(0.5)
            assert not second_task.done()  # waiting for the first's row lock
        second = await second_task
        async with db.transaction() as uow:
            rows = await uow.recordings.list_for_meeting("race-meeting")
        named = {r.daily_recording_id: r.id for r in rows}
        assert set(named) == {"daily-a", "daily-b"}
        assert (named["daily-a"], named["daily-b"]) == (first.recording_id, second.recording_id)
        assert first.recording_id != second.recording_id


async def test_a_started_event_racing_the_start_calls_confirmation_names_the_claim(
    postgres_db_url: str,
) -> None:
    """Daily's recording.started can arrive while the start call is still confirming its claim
    (starting -> recording). The event must still name that claim, not finish it and open a
    second session (found by test_reconciler under load: two rows for one recording)."""
    meeting_id, room = "race-start", "race-start-room"
    async with database(postgres_db_url) as db:
        async with db.transaction() as uow:
            uow.session.add(
                MeetingRow(
                    id=meeting_id,
                    room_name=room,
                    recording_type="raw-tracks",
                    start_date=T0,
                    end_date=T0 + timedelta(hours=1),
                )
            )
            claim = await uow.recordings.insert(
                own_session(meeting_id, "raw-tracks", RecordingStatus.STARTING, room_name=room)
            )
        started = RecordingStartedPayload(
            recording_id="daily-started",
            start_ts=T0.timestamp() + 1,
            instance_id=instance_id_for(meeting_id, "raw-tracks"),
            room_name=room,
        )
        async with db.transaction() as confirming:
            await confirming.recordings.confirm_claim(claim.id, started_at=T0)
            # The event is applied while the confirmation holds the claim's row.
            event_task = asyncio.create_task(_start_alone(db, started))
            await asyncio.sleep(0.5)
            assert not event_task.done()  # waiting for the confirmation's row lock
        effect = await event_task
        async with db.transaction() as uow:
            rows = await uow.recordings.list_for_meeting(meeting_id)
        assert [(r.id, r.status, r.daily_recording_id) for r in rows] == [
            (claim.id, RecordingStatus.RECORDING, "daily-started")
        ]
        assert effect.recording_id == claim.id


async def _start_alone(db: Database, p: RecordingStartedPayload) -> Any:
    async with db.transaction() as uow:
        return await apply_started(uow, p, NOW)


async def _apply_alone(db: Database, r: RecordingReady) -> Any:
    async with db.transaction() as uow:
        return await apply_ready(uow, r, bucket=None, now=NOW)


# ---------------------------------------------------------------- ApplyQueue


async def test_queue_applies_in_order_and_drops_beyond_capacity(caplog: pytest.LogCaptureFixture) -> None:
    applied: list[str] = []
    gate = asyncio.Event()

    async def apply(event_ids: list[str]) -> None:
        await gate.wait()
        applied.extend(event_ids)

    queue = ApplyQueue(capacity=3, workers=1)
    assert not queue.submit("before-start")  # not running: left to the sweep
    queue.start(apply)
    with queue.delivery():
        assert queue.should_apply_inline()  # alone, nothing queued
        with queue.delivery():
            assert not queue.should_apply_inline()  # another delivery in flight
    assert queue.submit("e0")
    await asyncio.sleep(0.05)  # the worker takes e0 and waits on the gate
    assert [queue.submit(f"e{n}") for n in range(1, 6)] == [True, True, True, False, False]
    # e0 was taken by the worker (waiting on the gate), e1..e3 fill the queue, e4, e5 are dropped.
    assert queue.dropped == 2
    assert caplog.text.count("apply queue full") == 1  # one line per burst, not one per event
    assert not queue.should_apply_inline()  # a backlog: later deliveries queue behind it
    gate.set()
    await queue.close(timeout_s=5)
    assert applied == ["e0", "e1", "e2", "e3"]  # e1..e3 waiting together: one batch
    assert not queue.running


async def test_waiting_events_are_applied_in_batches_of_at_most_batch() -> None:
    batches: list[list[str]] = []
    gate = asyncio.Event()

    async def apply(event_ids: list[str]) -> None:
        await gate.wait()
        batches.append(event_ids)

    queue = ApplyQueue(capacity=100, workers=1)
    queue.start(apply)
    assert queue.submit("first")
    await asyncio.sleep(0.05)  # taken alone: nothing else was waiting
    ids = [f"e{n}" for n in range(BATCH + 3)]
    assert all(queue.submit(i) for i in ids)
    gate.set()
    await queue.close(timeout_s=5)
    assert batches == [["first"], ids[:BATCH], ids[BATCH:]]


async def test_after_dropping_ids_the_drained_queue_reads_pending_events_back() -> None:
    """A burst larger than the queue: what was dropped is read back from the store once the queue
    drains, page by page while pages come back full, not left to the sweep's period."""
    stored = [f"e{n}" for n in range(10)]  # the inbox: every event stored, pending until applied
    applied: list[str] = []
    pages: list[int] = []
    gate = asyncio.Event()

    async def apply(event_ids: list[str]) -> None:
        await gate.wait()
        for event_id in event_ids:
            if event_id in stored:  # applying twice is a no-op, as in the service
                stored.remove(event_id)
                applied.append(event_id)

    async def refill(limit: int) -> list[str]:
        pages.append(limit)
        return stored[:limit]

    queue = ApplyQueue(capacity=3, workers=1)
    queue.start(apply, refill=refill)
    submitted = [queue.submit(e) for e in list(stored)]
    assert submitted.count(False) > 0 and queue.dropped > 0
    assert pages == []  # nothing read back while the queue is full
    gate.set()
    for _ in range(200):
        if not stored:
            break
        await asyncio.sleep(0.01)
    await queue.close(timeout_s=5)
    assert sorted(applied, key=lambda e: int(e[1:])) == [f"e{n}" for n in range(10)]
    assert applied.count("e9") == 1
    assert len(pages) >= 2 and set(pages) == {3}  # pages of the queue's capacity
    assert queue.refills == len(pages)


async def test_without_drops_the_queue_never_reads_back() -> None:
    pages: list[int] = []

    async def apply(event_ids: list[str]) -> None:
        return None

    async def refill(limit: int) -> list[str]:
        pages.append(limit)
        return []

    queue = ApplyQueue(capacity=10, workers=2)
    queue.start(apply, refill=refill)
    assert all(queue.submit(f"e{n}") for n in range(10))
    await asyncio.sleep(0.1)
    await queue.close(timeout_s=5)
    assert pages == [] and queue.refills == 0


async def test_close_leaves_unfinished_work_and_stops() -> None:
    started = asyncio.Event()

    async def apply(event_ids: list[str]) -> None:
        started.set()
        await asyncio.sleep(3600)

    queue = ApplyQueue(capacity=10, workers=1)
    queue.start(apply)
    queue.submit("stuck")
    queue.submit("never")
    await started.wait()
    await queue.close(timeout_s=0.2)
    assert not queue.running
    assert not queue.submit("after-close")


# ---------------------------------------------------------------- through the service


@pytest.fixture
async def svc(db_url: str, service_factory: ServiceFactory) -> Any:
    async with service_factory(service_env(db_url, RECORDER_S3_BUCKET="recordings")) as running:
        yield running


async def test_a_burst_is_answered_pending_then_applied_once_each(svc: RunningService) -> None:
    await register(svc, "m-1", hours=3)
    bodies = []
    for n in range(40):
        start_ts = T0.timestamp() + 60 * n
        bodies.append(
            envelope(
                "recording.ready-to-download",
                ready_payload(
                    room=ROOM, start_ts=start_ts, type_="raw-tracks", tracks=raw_tracks(ROOM, start_ts)
                ),
            )
        )
    answers = await asyncio.gather(*(post_webhook(svc.client, b) for b in bodies))
    assert [a.status_code for a in answers] == [200] * 40
    states = [a.json()["state"] for a in answers]
    assert set(states) <= {"applied", "pending"} and "pending" in states
    await until_applied(svc.client)
    recordings = (await meeting(svc, "m-1"))["recordings"]
    assert sorted(r["daily_recording_id"] for r in recordings) == sorted(
        b["payload"]["recording_id"] for b in bodies
    )
    assert all(r["status"] == "ready" for r in recordings)
    assert len(await callbacks(svc)) == 40
    writer = svc.app_state.resources.ingest.writer  # type: ignore[attr-defined]
    assert writer.batches < 40


async def test_a_lone_delivery_is_applied_before_its_answer(svc: RunningService) -> None:
    await register(svc, "m-1")
    body = envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=T0.timestamp() + 60))
    r = await post_webhook(svc.client, body)
    assert r.json() == {"status": "stored", "event_id": body["id"], "state": "applied"}
    assert (await meeting(svc, "m-1"))["recordings"][0]["status"] == "ready"


async def test_events_dropped_from_a_full_queue_are_read_back_and_applied(svc: RunningService) -> None:
    """The service's own apply and read-back on a queue of one: three stored events, two of them
    never queued (one dropped, one never submitted), all applied without the inbox sweep; an
    orphan (no meeting for its room) is not read back."""
    await register(svc, "m-1", hours=3)
    ingest = svc.app_state.resources.ingest  # type: ignore[attr-defined]
    bodies = [
        envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=T0.timestamp() + 60 * n))
        for n in range(3)
    ]
    orphan = envelope("recording.ready-to-download", ready_payload(room="elsewhere", start_ts=T0.timestamp()))
    assert (await post_webhook(svc.client, orphan)).json()["state"] == "orphan"
    async with ingest.db.transaction() as uow:
        for n, body in enumerate(bodies):
            received = datetime.now(UTC) - timedelta(seconds=10 - n)
            assert await uow.inbox.add_if_absent(inbox_row_for(json.dumps(body).encode(), now=received))
    ids = [b["id"] for b in bodies]
    assert list(await pending_event_ids(ingest, 10)) == ids  # oldest first, no orphan
    assert list(await pending_event_ids(ingest, 2)) == ids[:2]

    queue = ApplyQueue(capacity=1, workers=1)
    queue.start(
        lambda batch: apply_events(ingest, batch), refill=lambda limit: pending_event_ids(ingest, limit)
    )
    try:
        assert queue.submit(ids[0]) and not queue.submit(ids[1])  # no await between: the second is dropped
        await until_applied(svc.client)
    finally:
        await queue.close(timeout_s=5)
    assert queue.refills >= 2
    recordings = (await meeting(svc, "m-1"))["recordings"]
    assert sorted(r["daily_recording_id"] for r in recordings) == sorted(
        b["payload"]["recording_id"] for b in bodies
    )
    assert len(await callbacks(svc)) == 3


async def test_a_batch_applies_each_stored_event_once_and_skips_the_rest(svc: RunningService) -> None:
    """One transaction for a batch: an id given twice is applied once, an event already applied
    and an id never stored change nothing, and every outcome is recorded."""
    await register(svc, "m-1", hours=3)
    ingest = svc.app_state.resources.ingest  # type: ignore[attr-defined]
    bodies = [
        envelope("recording.ready-to-download", ready_payload(room=ROOM, start_ts=T0.timestamp() + 60 * n))
        for n in range(3)
    ]
    ids = [b["id"] for b in bodies]
    async with ingest.db.transaction() as uow:
        for body in bodies:
            assert await uow.inbox.add_if_absent(
                inbox_row_for(json.dumps(body).encode(), now=datetime.now(UTC))
            )
    assert await apply_events(ingest, [ids[0]]) == 1  # applied before the batch
    assert await apply_events(ingest, [ids[1], ids[0], "never-stored", ids[2], ids[1]]) == 2
    await until_applied(svc.client)
    recordings = (await meeting(svc, "m-1"))["recordings"]
    assert sorted(r["daily_recording_id"] for r in recordings) == sorted(
        b["payload"]["recording_id"] for b in bodies
    )
    assert len(await callbacks(svc)) == 3
    r = await svc.client.get("/v1/daily/events", params={"state": "applied"}, headers=AUTH)
    applied = {e["id"]: e for e in r.json()["events"]}
    assert set(ids) <= set(applied)
    assert all(applied[i]["meeting_id"] == "m-1" and applied[i]["attempts"] == 1 for i in ids)
