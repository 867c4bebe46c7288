"""Prebuilt statements, run on PostgreSQL straight on the transaction's psycopg connection.

The webhook apply and the callback outbox run a handful of fixed statements per event. Through
SQLAlchemy's session each costs ~170-210 µs of CPU (docs/performance.md); the same statement
sent by psycopg costs ~65 µs. So statements declared here with `prebuilt()` are compiled once
(per dialect and set of parameter names) and, on PostgreSQL, executed by psycopg on the
connection of the session's own transaction: SQLAlchemy still begins, commits and rolls back,
and the statements stay SQLAlchemy Core constructs written once, in the repositories. SQLite
(the embedded default) runs them through the session as before.

Bound values go through the statement's own bind processors (the UTC timestamps' check, JSON);
timestamps read back are made UTC-aware as the column type does; driver errors become what
SQLAlchemy would have raised (IntegrityError), or StorageUnavailable when the connection broke.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.errors import StorageUnavailable

# Statements declared prebuilt (module constants): only these are compiled and cached, so a
# statement built per call can never grow the cache.
_PREBUILT: dict[int, Any] = {}


class _Compiled:
    """A statement compiled for one set of parameter names: its SQL text, the bind processors
    of its parameters, and the compiled form that builds the parameter dict."""

    __slots__ = ("compiled", "processors", "sql")

    def __init__(self, stmt: Any, names: tuple[str, ...], dialect: Dialect) -> None:
        self.compiled = stmt.compile(dialect=dialect, column_keys=list(names))
        if self.compiled.post_compile_params:
            raise TypeError("a prebuilt statement cannot hold an expanding IN: spell it as ORs")
        self.sql = str(self.compiled)
        self.processors = {n: p for n, p in self.compiled._bind_processors.items() if p is not None}

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = self.compiled.construct_params(params, _check=False)
        for name, process in self.processors.items():
            value = values.get(name)
            if value is not None:
                values[name] = process(value)
        return values


# (statement id, parameter names) → the statement compiled for them
_COMPILED: dict[tuple[int, tuple[str, ...]], _Compiled] = {}


def prebuilt(stmt: Any) -> Any:
    """Declares a module-level statement prebuilt; returns it unchanged."""
    _PREBUILT[id(stmt)] = stmt
    return stmt


def _compiled(stmt: Any, names: tuple[str, ...], dialect: Dialect) -> _Compiled:
    key = (id(stmt), names)
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = _Compiled(stmt, names, dialect)
    return found


def _aware(row: Any) -> Any:
    """The row with its timestamps in UTC, as UTCDateTime reads them (psycopg answers in the
    session's time zone)."""
    if any(isinstance(v, datetime) for v in row):
        return row._make(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)
    return row


class StatementRunner:
    """Runs statements for one session's transaction, or on one connection in autocommit (each
    statement its own transaction): prebuilt ones on psycopg (PostgreSQL)."""

    def __init__(
        self, session: AsyncSession | None = None, *, connection: AsyncConnection | None = None
    ) -> None:
        if (session is None) == (connection is None):
            raise TypeError("a StatementRunner runs on a session or on a connection")
        self._s = session
        self._conn = connection
        self._dialect = session.get_bind().dialect if session is not None else connection.dialect  # type: ignore[union-attr]
        self._postgres = self._dialect.name == "postgresql"
        self._connections: tuple[AsyncConnection, psycopg.AsyncConnection[Any]] | None = None

    @property
    def dialect_name(self) -> str:
        return str(self._dialect.name)

    async def rows(self, stmt: Any, params: Mapping[str, Any] | None = None) -> Sequence[Any]:
        """Every row the statement returns (none for a statement without RETURNING)."""
        if not self._postgres or id(stmt) not in _PREBUILT:
            result = await self._through_sqlalchemy(stmt, params)
            return result.all() if result.returns_rows else []
        _rowcount, rows = await self._on_driver(stmt, params or {})
        return rows

    async def first(self, stmt: Any, params: Mapping[str, Any] | None = None) -> Any | None:
        found = await self.rows(stmt, params)
        return found[0] if found else None

    async def rowcount(self, stmt: Any, params: Mapping[str, Any] | None = None) -> int:
        """Rows a statement without RETURNING changed."""
        if not self._postgres or id(stmt) not in _PREBUILT:
            result = await self._through_sqlalchemy(stmt, params)
            return int(result.rowcount)
        count, _rows = await self._on_driver(stmt, params or {})
        return count

    async def many(self, stmt: Any, params: Sequence[Mapping[str, Any]]) -> None:
        """One statement without RETURNING, once per parameter set (all with the same names):
        on PostgreSQL sent together by psycopg's executemany (pipelined: one round trip)."""
        if not params:
            return
        if not self._postgres or id(stmt) not in _PREBUILT:
            for one in params:
                await self._through_sqlalchemy(stmt, one)
            return
        prepared = _compiled(stmt, tuple(sorted(params[0])), self._dialect)
        conn, driver = await self._driver()
        try:
            async with broken_is_unavailable(conn, driver), driver.cursor() as cur:
                await cur.executemany(prepared.sql, [prepared.parameters(one) for one in params])
        except psycopg.IntegrityError as exc:
            raise IntegrityError(prepared.sql, params, exc) from exc

    async def _driver(self) -> tuple[AsyncConnection, psycopg.AsyncConnection[Any]]:
        if self._connections is None:
            # The transaction's connection (fixed until it ends), or the one given.
            conn = self._conn if self._conn is not None else await self._s.connection()  # type: ignore[union-attr]
            self._connections = conn, await driver_of(conn)
        return self._connections

    async def _through_sqlalchemy(self, stmt: Any, params: Mapping[str, Any] | None) -> Any:
        values = dict(params) if params else None
        if self._s is not None:
            return await self._s.exec(stmt, params=values)
        assert self._conn is not None
        return await self._conn.execute(stmt, values)

    async def _on_driver(self, stmt: Any, params: Mapping[str, Any]) -> tuple[int, list[Any]]:
        prepared = _compiled(stmt, tuple(sorted(params)), self._dialect)
        sql, values = prepared.sql, prepared.parameters(params)
        conn, driver = await self._driver()
        try:
            async with (
                broken_is_unavailable(conn, driver),
                driver.cursor(row_factory=namedtuple_row) as cur,
            ):
                await cur.execute(sql, values)
                rows = [_aware(r) for r in await cur.fetchall()] if cur.description else []
                return cur.rowcount, rows
        except psycopg.IntegrityError as exc:
            raise IntegrityError(sql, values, exc) from exc


async def driver_of(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under a SQLAlchemy connection (PostgreSQL engines only)."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


@contextlib.asynccontextmanager
async def broken_is_unavailable(
    conn: AsyncConnection, driver: psycopg.AsyncConnection[Any]
) -> AsyncIterator[None]:
    """Around statements sent on `driver` directly: if it broke (database restart, network),
    SQLAlchemy's pool is told to discard `conn` and the caller gets StorageUnavailable, as
    `storage_errors()` gives for statements sent through SQLAlchemy. Other errors pass."""
    try:
        yield
    except psycopg.Error as exc:
        if driver.closed or driver.broken:
            await conn.invalidate()
            raise StorageUnavailable("database unavailable") from exc
        raise
