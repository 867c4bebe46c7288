from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from recorder_service.adapters.db import tables  # noqa: F401  (registers tables)
from recorder_service.adapters.db.engine import create_engine
from recorder_service.adapters.db.migrate import downgrade, upgrade


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, SQLModel.metadata))


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
async def test_migrations_match_the_models(backend: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(backend)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_downgrade_then_upgrade(tmp_path: object) -> None:
    import asyncio
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")

    async def table_names() -> list[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: inspect(c).get_table_names())
        finally:
            await engine.dispose()

    assert set(asyncio.run(table_names())) <= {"alembic_version"}
    upgrade(url)
    assert {"meetings", "recordings", "inbox_events", "callbacks"} <= set(asyncio.run(table_names()))


def test_downgrade_then_upgrade_postgres(pg_url: str) -> None:
    # Runs last against the session database, leaving it at head again.
    downgrade(pg_url, "base")
    upgrade(pg_url)
