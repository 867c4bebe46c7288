"""Engine construction: one per process, tuned per dialect."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

# Connections per process, at most; each is kept once opened. (Before: 10 kept plus 10
# "overflow" ones, closed as they came back: under a sustained load of more than 10 concurrent
# statements, e.g. 64 playback viewers, the process reconnected ~20 times a second, each a
# backend fork on the server; docs/performance.md.)
POOL_SIZE = 20
# Opened at start-up by warm_pool, within WARM_TIMEOUT_S; the rest open when needed.
WARM_CONNECTIONS = 10
WARM_TIMEOUT_S = 5.0
# A pooled connection idle for this long is pinged before it is handed out.
PING_IDLE_S = 1.0


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; busy_timeout queues writers.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=10)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, as `pool_pre_ping` does, but only for a connection that
    sat in the pool for PING_IDLE_S or more: a database restart or an idle timeout breaks
    connections that nobody uses, and those are the ones pinged. A connection in steady use is
    handed out without the extra round trip (one of ~10 per webhook; docs/performance.md); if
    the database went away in the last second, its next statement fails, the connection is
    discarded, and the caller answers 503 or retries (Daily redelivers, the loops retry)."""

    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since < PING_IDLE_S:
            return
        try:
            # The dialect's own ping (what pool_pre_ping runs): it leaves no transaction open.
            alive = dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("stale pooled connection") from exc
        if not alive:
            # The pool discards this connection and hands out another (or opens one).
            raise DisconnectionError("stale pooled connection")


async def warm_pool(engine: AsyncEngine) -> None:
    """Opens the pool's connections at start-up, so the first burst of requests (a herd of
    joiners) does not wait for PostgreSQL to fork a backend per connection. Best effort: a
    database that is down now is reported by /readyz, not here."""
    if not is_postgres(engine):
        return

    async def open_and_return() -> None:
        async with engine.connect():
            pass

    with contextlib.suppress(Exception):  # includes TimeoutError: an unreachable host
        await asyncio.wait_for(
            asyncio.gather(*(open_and_return() for _ in range(WARM_CONNECTIONS)), return_exceptions=True),
            timeout=WARM_TIMEOUT_S,
        )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"
