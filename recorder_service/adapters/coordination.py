"""Locks, start outcomes and rate-limit counters: Redis across replicas, or in-process.

Without Redis the service is single-replica only (logged as a warning at start)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from recorder_service.errors import CoordinationUnavailable, LockWaitTimeout

# Release only if we still own the lock (its value is our token).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Fixed-window counter: INCR, set the expiry on first hit, return count and TTL.
_HIT = """
local n = redis.call('incr', KEYS[1])
if n == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return {n, redis.call('pttl', KEYS[1])}
"""


class RedisCoordinator:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._release = client.register_script(_RELEASE)
        self._hit = client.register_script(_HIT)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[None]:
        name = f"{self._prefix}lock:{key}"
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        delay = 0.01
        try:
            # wait_s=0: exactly one attempt.
            while not await self._redis.set(name, token, nx=True, px=int(ttl_s * 1000)):
                if time.monotonic() >= deadline:
                    raise LockWaitTimeout(f"lock {key} busy")
                await asyncio.sleep(delay)
                delay = min(0.1, delay * 1.5)
        except (RedisError, LockError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc
        try:
            yield
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[name], args=[token])

    async def put_outcome(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self._redis.set(f"{self._prefix}outcome:{key}", value, px=int(ttl_s * 1000))
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc

    async def get_outcome(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(f"{self._prefix}outcome:{key}")
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc
        return value if isinstance(value, bytes) else None

    async def hit(self, key: str, *, limit: int, window_s: float) -> int | None:
        """Counts one request; returns whole seconds to wait when over the limit, else None."""
        window = int(time.time() // window_s)
        try:
            count, ttl_ms = await self._hit(
                keys=[f"{self._prefix}rate:{key}:{window}"], args=[int(window_s * 1000)]
            )
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc
        if int(count) <= limit:
            return None
        return max(1, math.ceil(int(ttl_ms) / 1000))

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc


class LocalCoordinator:
    """Same behaviour inside one process (asyncio locks, dict counters)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}
        self._outcomes: dict[str, tuple[float, bytes]] = {}
        self._windows: dict[str, tuple[int, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            if wait_s <= 0 and lock.locked():
                raise LockWaitTimeout(f"lock {key} busy")
            try:
                await asyncio.wait_for(lock.acquire(), timeout=max(wait_s, 0.001))
            except TimeoutError:
                raise LockWaitTimeout(f"lock {key} busy") from None
            try:
                yield
            finally:
                lock.release()
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:  # keep the dict from growing with every meeting
                del self._waiters[key]
                del self._locks[key]

    async def put_outcome(self, key: str, value: bytes, ttl_s: float) -> None:
        self._outcomes[key] = (time.monotonic() + ttl_s, value)
        now = time.monotonic()
        for k in [k for k, (exp, _) in self._outcomes.items() if exp < now]:
            del self._outcomes[k]

    async def get_outcome(self, key: str) -> bytes | None:
        item = self._outcomes.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    async def hit(self, key: str, *, limit: int, window_s: float) -> int | None:
        now = time.time()
        window = int(now // window_s)
        current_window, count = self._windows.get(key, (window, 0))
        if current_window != window:
            count = 0
            if len(self._windows) > 100_000:  # bound memory under address churn
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        count += 1
        self._windows[key] = (window, count)
        if count <= limit:
            return None
        return max(1, math.ceil((window + 1) * window_s - now))

    async def ping(self) -> None:
        return None
