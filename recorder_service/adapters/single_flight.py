"""SingleFlight: in-process sharing of one call's answer among the callers that arrive while it
runs. Join-time starts use it by (meeting, type): a herd of joiners on one replica then costs
one lock wait, not one per joiner polling Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Abandoned(Exception):
    """The leading call was cancelled."""


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[T]] = {}

    def current(self, key: str) -> asyncio.Future[T] | None:
        return self._flights.get(key)

    @contextlib.contextmanager
    def leading(self, key: str) -> Iterator[asyncio.Future[T]]:
        """Registers the caller's call as the one in flight; its answer is shared when it ends."""
        flight: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._flights.setdefault(key, flight)
        try:
            yield flight
        except BaseException as exc:
            # The waiting callers see the failure; a cancellation becomes Abandoned, so they
            # are not cancelled themselves.
            flight.set_exception(exc if isinstance(exc, Exception) else Abandoned())
            flight.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
