"""Statement pieces the repositories share: the dialect's INSERT (for ON CONFLICT) and
newest-first keyset paging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_for(dialect: str) -> Any:
    """The dialect's own `insert` construct: the one that offers `on_conflict_do_nothing`."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


def newest_first(stmt: Any, ts: Any, row_id: Any, *, before: tuple[datetime, str] | None, limit: int) -> Any:
    """`stmt` ordered by (ts, id) descending, at most `limit` rows; with `before`, only the rows
    after that key in this order. The row comparison is spelled out so both dialects read it alike."""
    if before is not None:
        last_ts, last_id = before
        stmt = stmt.where(or_(ts < last_ts, and_(ts == last_ts, row_id < last_id)))
    return stmt.order_by(ts.desc(), row_id.desc()).limit(limit)
