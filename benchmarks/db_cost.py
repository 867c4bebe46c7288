"""CPU cost of the webhook path's database work, in-process (no HTTP, no load generator):

- apply: one stored `recording.ready-to-download` event applied (`services.ingest.apply_event`:
  inbox lock, meeting match, session lookup, recording insert, callback insert, inbox update),
  CPU and wall time per event and the statements it sent;
- inbox batch: one batch of N new inbox rows stored, as the writer does it on PostgreSQL
  (`pg_batch_insert`, straight to psycopg) and through SQLAlchemy's multi-row INSERT (the
  SQLite path, `insert_if_absent`), alternated in rounds so machine drift hits both alike.

    uv run python benchmarks/db_cost.py [--events 400] [--batch 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from harness import bench_database, ready_event
from harness import run as harness_run
from sqlalchemy import event

from recorder_service.adapters.db.engine import create_engine, session_factory
from recorder_service.adapters.db.inbox import (
    InboxRecord,
    inbox_values,
    insert_if_absent,
    pg_batch_insert,
    pg_batch_parameters,
)
from recorder_service.adapters.db.inbox_writer import InboxWriter
from recorder_service.adapters.db.types import utcnow
from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.core.models import Meeting
from recorder_service.services.ingest import IngestDeps, apply_event, inbox_row_for
from recorder_service.services.meetings import register_meeting
from recorder_service.workers.apply_queue import ApplyQueue

MEETINGS = 50
WARM_UP = 20


async def apply_cost(url: str, events: int) -> None:
    engine = create_engine(url)
    db = Database(engine, session_factory(engine))
    writer = InboxWriter(engine)
    statements: Counter[str] = Counter()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements[" ".join(statement.split()[:3])] += 1

    deps = IngestDeps(
        db=db,
        verifier=None,
        bucket="bench",
        now=utcnow,
        wake_outbox=lambda: None,
        writer=writer,
        apply_queue=ApplyQueue(),
    )
    rooms = [f"room-{uuid.uuid4().hex[:8]}" for _ in range(MEETINGS)]
    for room in rooms:
        meeting = Meeting(
            id=str(uuid.uuid4()),
            room_name=room,
            recording_type="cloud",
            start_date=datetime(2026, 1, 1, tzinfo=UTC),
            end_date=datetime(2099, 1, 1, tzinfo=UTC),
        )
        await register_meeting(db, meeting)
    ids = []
    for n in range(events + WARM_UP):
        row = inbox_row_for(ready_event(rooms[n % MEETINGS], time.time() - 3600), now=utcnow())
        await writer.store(row)
        ids.append(row.id)
    for event_id in ids[:WARM_UP]:
        assert await apply_event(deps, event_id) == "applied"
    statements.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    for event_id in ids[WARM_UP:]:
        assert await apply_event(deps, event_id) == "applied"
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"apply: {events} events, {cpu / events * 1000:.2f} ms CPU and {wall / events * 1000:.2f} ms wall each"
    )
    print("  statements per event (the pool's checkout ping not counted):")
    for statement, count in sorted(statements.items()):
        print(f"    {count / events:4.1f}  {statement} …")
    await writer.close()
    await engine.dispose()


async def inbox_batch_cost(url: str, batch: int, rounds: int) -> None:
    engine = create_engine(url)
    conn = await (await engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
    driver = (await conn.get_raw_connection()).driver_connection

    def records() -> list[InboxRecord]:
        return [
            InboxRecord(
                id=f"evt-{uuid.uuid4()}",
                event_type="recording.ready-to-download",
                state="pending",
                body=ready_event("room", time.time()),
                received_at=utcnow(),
                room_name="room",
            )
            for _ in range(batch)
        ]

    async def build_only() -> None:
        records()

    async def writer_postgres() -> None:
        rows = records()
        cursor = psycopg.AsyncRawCursor(driver)
        await cursor.execute(pg_batch_insert(len(rows)), pg_batch_parameters(rows))
        await cursor.fetchall()

    async def sqlalchemy_multirow() -> None:
        result = await conn.execute(insert_if_absent("postgresql"), inbox_values(records()))
        result.all()

    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "building the rows alone": build_only,
        "writer (psycopg, VALUES per size)": writer_postgres,
        "SQLAlchemy multi-row INSERT": sqlalchemy_multirow,
    }
    per_round = 300
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, variant in variants.items():
            for _ in range(30):
                await variant()
            cpu = time.process_time()
            for _ in range(per_round):
                await variant()
            results[name].append((time.process_time() - cpu) / per_round * 1e6)
    base = statistics.median(results["building the rows alone"])
    print(
        f"inbox batch of {batch} rows, CPU per batch (median of {rounds} alternated rounds, net of building the rows):"
    )
    for name, values in results.items():
        if name != "building the rows alone":
            print(f"  {name:36} {statistics.median(values) - base:7.1f} µs")
    await conn.close()
    await engine.dispose()


async def run(args: argparse.Namespace) -> None:
    with bench_database() as (url, _dsn):
        await apply_cost(url, args.events)
        await inbox_batch_cost(url, args.batch, args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    harness_run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
