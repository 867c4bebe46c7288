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


def test_schema_version_agrees_with_alembic(tmp_path: object) -> None:
    """`serve` checks the schema without alembic (adapters/db/schema_version.py); it must give
    alembic's answers: the head, and the database's revision before, at and below head."""
    import asyncio
    import pathlib

    from recorder_service.adapters.db import migrate, schema_version

    assert isinstance(tmp_path, pathlib.Path)
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    head = schema_version.head_from_files(schema_version.migrations_dir() / "versions")
    assert head is not None
    assert head == migrate.head_revision(url) == schema_version.head_revision(url)

    async def both() -> tuple[str | None, str | None, bool]:
        engine = create_engine(url)
        try:
            ours = await schema_version.current_revision(engine)
            return (
                ours,
                await migrate.current_revision(engine),
                await schema_version.schema_is_current(engine, url),
            )
        finally:
            await engine.dispose()

    assert asyncio.run(both()) == (None, None, False)  # no database yet
    upgrade(url)
    assert asyncio.run(both()) == (head, head, True)
    downgrade(url, "-1")
    ours, theirs, current = asyncio.run(both())
    assert ours == theirs is not None and ours != head and not current


def test_head_from_files_reads_only_one_plain_line(tmp_path: object) -> None:
    import pathlib

    from recorder_service.adapters.db.schema_version import head_from_files

    assert isinstance(tmp_path, pathlib.Path)
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    assert head_from_files(tmp_path) == "b"
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert head_from_files(tmp_path) is None  # two heads: alembic answers (MultipleHeads)
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert head_from_files(tmp_path) == "d"  # a merge
    (tmp_path / "e.py").write_text('revision = make_id()\ndown_revision = "d"\n')
    assert head_from_files(tmp_path) is None
