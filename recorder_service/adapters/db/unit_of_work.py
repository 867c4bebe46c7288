"""A transaction with the repositories bound to it; driver failures become StorageUnavailable."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recorder_service.adapters.db.callbacks import CallbackOutbox, CallbackRepository
from recorder_service.adapters.db.deletions import DeletionRepository
from recorder_service.adapters.db.inbox import InboxRepository
from recorder_service.adapters.db.meetings import MeetingRepository
from recorder_service.adapters.db.prebuilt import StatementRunner
from recorder_service.adapters.db.recordings import RecordingReads, RecordingRepository
from recorder_service.adapters.db.service_state import ServiceStateRepository
from recorder_service.errors import StorageUnavailable


class UnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        runner = StatementRunner(session)
        self.meetings = MeetingRepository(session, runner)
        self.recordings = RecordingRepository(session, runner)
        self.inbox = InboxRepository(session, runner)
        self.callbacks = CallbackRepository(session, runner)
        self.deletions = DeletionRepository(session)
        self.state = ServiceStateRepository(session)


class Reads:
    """Single statements on a pooled connection in autocommit: no BEGIN, no COMMIT."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.recordings = RecordingReads(connection)


class Autocommit:
    """Statements that are each atomic on their own, on one pooled connection in autocommit:
    each is its own transaction, without the round trips of BEGIN and COMMIT."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.outbox = CallbackOutbox(StatementRunner(connection=connection))


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Driver failures meaning "the database is unreachable" become StorageUnavailable."""
    try:
        yield
    except IntegrityError:
        raise
    except (OperationalError, PoolTimeout, OSError) as exc:
        raise StorageUnavailable("database unavailable") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailable("database unavailable") from exc
        raise


class Database:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self._sessions = sessions

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """Commits on success, rolls back on error. The use case owns the transaction."""
        with storage_errors():
            async with self._sessions() as session, session.begin():
                yield UnitOfWork(session)

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Autocommit]:
        with storage_errors():
            async with self.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                yield Autocommit(connection)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Reads]:
        """For one read that needs no snapshot shared with another: the statement runs on its
        own (autocommit), without the round trips of BEGIN and COMMIT. The pool hands out
        only connections it reset (rolled back); pre-ping still guards against dead ones."""
        with storage_errors():
            async with self.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                yield Reads(connection)
