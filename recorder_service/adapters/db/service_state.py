"""Named values that survive restarts (the reconciler's cursor). Never commits."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.tables import ServiceStateRow
from recorder_service.adapters.db.types import utcnow


class ServiceStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, key: str) -> str | None:
        row = await self._s.get(ServiceStateRow, key)
        return row.value if row else None

    async def put(self, key: str, value: str) -> None:
        row = await self._s.get(ServiceStateRow, key, with_for_update=True)
        if row is None:
            row = ServiceStateRow(key=key, value=value)
        row.value = value
        row.updated_at = utcnow()
        self._s.add(row)
        await self._s.flush()
