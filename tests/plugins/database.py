"""Pytest fixtures: a fresh PostgreSQL database per session (dropped after), a SQLite file,
migrations applied once each, and every test starting from empty tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from recorder_service.adapters.db.engine import create_engine
from recorder_service.adapters.db.migrate import upgrade

PG_ADMIN_DSN = os.environ.get(
    "RECORDER_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_HOST = os.environ.get("RECORDER_TEST_PG_HOST", "postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("RECORDER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = (
    "callback_attempts",
    "callbacks",
    "deletions",
    "inbox_events",
    "recordings",
    "meetings",
    "service_state",
)


def _drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"recorder_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql+psycopg://{PG_HOST}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        _drop_database(name)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "recorder.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


async def truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if url.startswith("postgresql"):
                await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
            else:
                for table in TABLES:
                    await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (fixed names)
    finally:
        await engine.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
async def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once per backend, each starting from empty tables."""
    url: str = request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")
    await truncate(url)
    return url


@pytest.fixture
async def postgres_db_url(pg_url: str) -> str:
    """For tests that need several processes sharing one database (PostgreSQL only)."""
    await truncate(pg_url)
    return pg_url


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    return f"recorder-test:{uuid.uuid4().hex[:8]}:"
