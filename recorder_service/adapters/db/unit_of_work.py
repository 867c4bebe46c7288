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


class Autocommit:
    """Statements that are each atomic on their own, on one pooled connection in autocommit:
    each is its own transaction, without the round trips of BEGIN and COMMIT. For a read that
    needs no snapshot shared with another (playback's), and the outbox's single statements."""

    def __init__(self, connection: AsyncConnection) -> None:
        runner = StatementRunner(connection=connection)
        self.recordings = RecordingReads(runner)
        self.outbox = CallbackOutbox(runner)


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
        """The pool hands out only connections it reset (rolled back); one idle for a second
        or more is pinged first (engine.py)."""
        with storage_errors():
            async with self.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                yield Autocommit(connection)
