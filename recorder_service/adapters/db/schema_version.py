"""Is the database at the latest migration? Answered without importing alembic.

`serve` asks this once at start-up. Alembic (with Mako and its DDL implementations) would stay
imported for the life of the process, about 8 MB resident that nothing else needs
(docs/performance.md, "Memory"). So the head comes from the migration files' `revision` and
`down_revision` assignments, read with `ast` (the convention alembic itself requires of them),
and the database's revision from alembic's version table. Whenever the files are not a single
line of plain assignments (several heads, a value that is not a literal), alembic answers
instead; tests/unit pins the two answers to each other."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# alembic's default version table; migrations/env.py does not change it.
VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    package = Path(__file__).resolve().parents[2]
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("migrations directory not found next to recorder_service")


def _assignments(path: Path) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and value is not None:
            values[target.id] = ast.literal_eval(value)
    return values


def head_from_files(versions: Path) -> str | None:
    """The single head of the migration files in `versions`, or None when it cannot be read
    this way (no files, several heads, a revision that is not a plain literal)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        for path in versions.glob("*.py"):
            values = _assignments(path)
            revision, down = values.get("revision"), values.get("down_revision")
            if not isinstance(revision, str):
                return None
            revisions.add(revision)
            if isinstance(down, str):
                parents.add(down)
            elif isinstance(down, tuple | list):
                parents.update(str(d) for d in down)
            elif down is not None:
                return None
    except (OSError, SyntaxError, ValueError):
        return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def head_revision(database_url: str) -> str | None:
    head = head_from_files(migrations_dir() / "versions")
    if head is not None:
        return head
    from recorder_service.adapters.db.migrate import head_revision as alembic_head

    return alembic_head(database_url)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in the database; None before the first migration. Several rows
    (branches) are alembic's to interpret."""

    def _read(conn: Connection) -> list[str] | None:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return [row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]  # noqa: S608

    async with engine.connect() as conn:
        rows = await conn.run_sync(_read)
    if rows is None or not rows:
        return None
    if len(rows) == 1:
        return rows[0]
    from recorder_service.adapters.db.migrate import current_revision as alembic_current

    return await alembic_current(engine)


async def schema_is_current(engine: AsyncEngine, database_url: str) -> bool:
    return await current_revision(engine) == head_revision(database_url)
