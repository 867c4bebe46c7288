"""InboxWriter: concurrent webhook deliveries stored by one INSERT per batch.

At most one INSERT is in flight per process; rows that arrive meanwhile wait and go into the
next one. A lone delivery is written at once (no timer, no added latency); under load the
batches grow by themselves, so the database sees one round trip and one commit for many
webhooks. Every caller learns whether *its* row was stored, and is answered only after the
commit that holds it."""

from __future__ import annotations

import asyncio
import logging

from recorder_service.adapters.db.inbox import insert_if_absent
from recorder_service.adapters.db.tables import InboxEventRow
from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.errors import StorageUnavailable

log = logging.getLogger(__name__)

# Rows per INSERT: 13 bound values each, far below PostgreSQL's and SQLite's parameter limits.
MAX_BATCH = 256

_Waiter = tuple[InboxEventRow, "asyncio.Future[bool]"]


class InboxWriter:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._waiting: list[_Waiter] = []
        self._drain: asyncio.Task[None] | None = None
        self.batches = 0  # INSERT statements run (for tests and benchmarks)

    async def store(self, row: InboxEventRow) -> bool:
        """True when stored; False when an event with that id is already there (a redelivery,
        also one that arrived in the same batch). Raises what the write raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_waiting(), name="inbox-writer")
        # The write runs in its own task: a caller that goes away (client disconnect) neither
        # cancels the INSERT for the others nor leaves its own row half-written.
        return await asyncio.shield(future)

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
            stored = await self._insert([row for row, _ in batch])
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
        for row, future in batch:
            # Two deliveries of one id in one batch: the first is the stored one.
            mine = row.id in stored and row.id not in claimed
            claimed.add(row.id)
            if not future.done():
                future.set_result(mine)

    async def _insert(self, rows: list[InboxEventRow]) -> set[str]:
        distinct = list({row.id: row for row in reversed(rows)}.values())
        self.batches += 1
        async with self._db.core_transaction() as conn:
            stmt = insert_if_absent(conn.dialect.name, distinct)
            return {r[0] for r in (await conn.execute(stmt)).all()}


def _settle(batch: list[_Waiter], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
