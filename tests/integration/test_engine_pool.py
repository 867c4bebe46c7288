"""The PostgreSQL pool: a bounded set of connections, each kept once opened, warmed at start."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from recorder_service.adapters.db.engine import POOL_SIZE, WARM_CONNECTIONS, create_engine, warm_pool


async def test_connections_opened_under_load_are_kept_and_bounded(postgres_db_url: str) -> None:
    """More concurrent statements than connections: they share POOL_SIZE connections, and a
    second wave finds them all open (no connection is closed as it comes back, so a sustained
    load does not reconnect)."""
    engine = create_engine(postgres_db_url)
    try:
        await warm_pool(engine)
        pool = engine.pool
        assert pool.checkedin() == WARM_CONNECTIONS  # type: ignore[attr-defined]
        most = 0

        async def one() -> None:
            nonlocal most
            async with engine.connect() as conn:
                most = max(most, pool.checkedout())  # type: ignore[attr-defined]
                await conn.execute(text("SELECT pg_sleep(0.05)"))

        await asyncio.gather(*(one() for _ in range(3 * POOL_SIZE)))
        assert most == POOL_SIZE
        assert pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]
        first = await _backends(engine)
        assert len(first) == POOL_SIZE
        await asyncio.gather(*(one() for _ in range(3 * POOL_SIZE)))
        assert await _backends(engine) == first  # the same server processes: nothing reconnected
    finally:
        await engine.dispose()


async def _backends(engine: AsyncEngine) -> set[int]:
    """The server processes serving this database (the pool's connections)."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
        return {int(r[0]) for r in rows}
