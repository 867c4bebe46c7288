"""InboxWriter: concurrent webhook deliveries stored by one INSERT per batch.

At most one INSERT is in flight per process; rows that arrive meanwhile wait and go into the
next one. A lone delivery is written at once (no timer, no added latency); under load the
batches grow by themselves, so the database sees one statement and one commit for many
webhooks. Every caller learns whether *its* row was stored, and is answered only after the
commit that holds it.

The writer keeps one connection of its own in autocommit mode: a single multi-row INSERT is
atomic by itself, so a batch costs one round trip (no pool checkout, ping, BEGIN or COMMIT).
A connection that breaks (database restart) is replaced, and the batch is sent once more on
the new one: `ON CONFLICT DO NOTHING` makes that safe even if the first attempt committed
(its rows then read as already stored, and the inbox sweep applies them)."""

from __future__ import annotations

import asyncio
import logging

import psycopg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recorder_service.adapters.db.inbox import (
    InboxRecord,
    inbox_values,
    insert_if_absent,
    pg_batch_insert,
    pg_batch_parameters,
)
from recorder_service.adapters.db.prebuilt import broken_is_unavailable, driver_of
from recorder_service.adapters.db.unit_of_work import storage_errors
from recorder_service.errors import StorageUnavailable

log = logging.getLogger(__name__)

# Rows per INSERT: SQLAlchemy splits larger executemany batches into pages of its own anyway.
MAX_BATCH = 256

_Waiter = tuple[InboxRecord, "asyncio.Future[bool]"]


class InboxWriter:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._waiting: list[_Waiter] = []
        self._drain: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self.batches = 0  # INSERT statements run (for tests and benchmarks)

    async def store(self, record: InboxRecord) -> bool:
        """True when stored; False when an event with that id is already there (a redelivery,
        also one that arrived in the same batch). Raises what the write raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_waiting(), name="inbox-writer")
        # The write runs in its own task: a caller that goes away (client disconnect) cancels
        # only its own future, which the writer then skips; the INSERT goes on for the others.
        return await future

    async def close(self) -> None:
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)
        await self._discard_connection()

    async def _drain_waiting(self) -> None:
        batch: list[_Waiter] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._write(batch)
        except BaseException:  # cancelled at shutdown: nobody may wait forever
            _settle(batch + self._waiting, StorageUnavailable("the inbox writer stopped"))
            self._waiting.clear()
            raise
        finally:
            self._drain = None

    async def _write(self, batch: list[_Waiter]) -> None:
        try:
            stored = await self._insert([record for record, _ in batch])
        except StorageUnavailable as exc:
            _settle(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return
            # A row the database refuses must not fail the deliveries it was batched with.
            log.warning("inbox batch insert failed (%s); storing its rows one by one", type(exc).__name__)
            for waiter in batch:
                await self._write([waiter])
            return
        claimed: set[str] = set()
        for record, future in batch:
            # Two deliveries of one id in one batch: the first is the stored one.
            mine = record.id in stored and record.id not in claimed
            claimed.add(record.id)
            if not future.done():
                future.set_result(mine)

    async def _insert(self, records: list[InboxRecord]) -> set[str]:
        distinct = list({r.id: r for r in reversed(records)}.values())
        self.batches += 1
        for attempt in (1, 2):
            try:
                with storage_errors():
                    conn = await self._connection()
                    if conn.dialect.name == "postgresql":
                        return await _insert_postgres(conn, distinct)
                    # SQLite: SQLAlchemy sends the list as one multi-row INSERT.
                    result = await conn.execute(insert_if_absent(conn.dialect.name), inbox_values(distinct))
                    return {row[0] for row in result.all()}
            except StorageUnavailable:
                await self._discard_connection()
                if attempt == 2:
                    raise
                log.warning("inbox writer connection lost; sending the batch again on a new one")
            except Exception:
                await self._reset_connection()
                raise
        raise AssertionError("unreachable")

    async def _connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def _reset_connection(self) -> None:
        """After a refused statement: nothing is open in autocommit, but SQLAlchemy's own
        bookkeeping must be reset before the next one."""
        if self._conn is not None:
            try:
                await self._conn.rollback()
            except Exception:
                await self._discard_connection()

    async def _discard_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:  # already broken: nothing to give back
                log.debug("closing a broken inbox writer connection failed: %s", exc)


async def _insert_postgres(conn: AsyncConnection, records: list[InboxRecord]) -> set[str]:
    """The batch as one INSERT on the driver's own connection: no SQLAlchemy statement layer
    on the path that is a fifth of a webhook's CPU."""
    driver = await driver_of(conn)
    async with broken_is_unavailable(conn, driver), psycopg.AsyncRawCursor(driver) as cursor:
        await cursor.execute(pg_batch_insert(len(records)), pg_batch_parameters(records))
        return {row[0] for row in await cursor.fetchall()}


def _settle(batch: list[_Waiter], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
