"""The deployment's budget of recording-start calls to Daily: at most `calls` in any `window_s`,
every replica together (Redis), or this process alone (no Redis: a single replica).

Every HTTP start request takes a call from the budget before it is sent, retries included. A
call counts from the moment it is granted until `window_s` after its answer came back: the
request reached Daily somewhere in between, so two calls granted this way always arrive at
Daily at least a window apart from the call `calls` places before them, whatever the network
did. A call whose replica died holds its place for `hold_s` (longer than any request), then
for the window.

Callers wait in one queue, ordered by the priority rules of core/start_budget.py; only callers
that are still waiting take calls ("present"), and a caller refused after its wait keeps its
place for a while, so that its next request (after Retry-After) does not start at the back.

Per meeting and type, calls are at least `meeting_interval_s` apart. "Not hosting" is a fact
about the Daily room (whichever type asked): it is remembered per room for as long and given to
every caller instead of asking Daily again, and the room's "streak" of such answers sets the
priority of its meetings' calls."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recorder_service.core.start_budget import (
    STALE_CLASS,
    STALE_STREAK_S,
    STREAK_MEMORY_S,
    penalty_s,
    priority_class,
    queue_score,
    retry_after_s,
    turn_estimate_s,
)
from recorder_service.errors import CoordinationUnavailable, StartBudgetExhausted
from recorder_service.telemetry import Telemetry, disabled_telemetry

# A refused caller's place in the queue outlives its Retry-After by this much.
TICKET_GRACE_S = 30.0
# A waiting caller that stops asking for this long (its replica died) no longer takes calls.
PRESENCE_S = 3.0
# Longest pause between two looks at the queue.
MAX_POLL_S = 1.0


@dataclass(frozen=True)
class BudgetPolicy:
    calls: int
    window_s: float
    wait_s: float
    # Per meeting and type: the least time between two calls, and how long "not hosting" is kept.
    meeting_interval_s: float
    # How long a granted call may take before its slot is counted from the grant alone.
    hold_s: float


@dataclass(frozen=True)
class TryResult:
    granted: bool
    next_free_s: float = 0.0  # until the next call frees (or this meeting's pace allows one)
    ahead: int = 0  # callers before us in the queue, waiting or not
    used: int = 0  # calls counted in the current window


class BudgetBackend(Protocol):
    async def try_acquire(
        self, ticket: str, room: str, grant_id: str, *, retry: bool, policy: BudgetPolicy
    ) -> TryResult: ...

    async def complete(self, grant_id: str, *, block_s: float) -> None: ...

    async def leave(self, ticket: str, *, keep_s: float) -> None: ...

    async def note_not_hosting(self, room: str, *, memo_s: float) -> None: ...

    async def note_hosting(self, room: str) -> None: ...

    async def not_hosting_recently(self, room: str) -> bool: ...


class StartBudget:
    def __init__(
        self, backend: BudgetBackend, policy: BudgetPolicy, telemetry: Telemetry | None = None
    ) -> None:
        self._backend = backend
        self.policy = policy
        self._telemetry = telemetry or disabled_telemetry()

    async def acquire(self, ticket: str, *, room: str, retry: bool, wait_s: float) -> str:
        """A grant id once a call for `ticket` (a meeting and type) in `room` is ours;
        StartBudgetExhausted (with an honest Retry-After) when none can be had within `wait_s`."""
        instruments = self._telemetry.instruments
        kind = "retry" if retry else "first"
        grant_id = uuid.uuid4().hex
        started = time.monotonic()
        deadline = started + wait_s
        p = self.policy
        instruments.budget_waiting(1)
        try:
            while True:
                result = await self._backend.try_acquire(ticket, room, grant_id, retry=retry, policy=p)
                if result.granted:
                    instruments.record_budget_grant(kind, time.monotonic() - started)
                    return grant_id
                free = p.calls - result.used
                estimate = turn_estimate_s(
                    ahead=result.ahead,
                    free=free,
                    next_free_s=result.next_free_s,
                    calls=p.calls,
                    window_s=p.window_s,
                )
                remaining = deadline - time.monotonic()
                # Give up at the end of the wait, or at once when the turn is clearly further away.
                if remaining <= 0 or estimate > remaining + p.window_s:
                    retry_after = retry_after_s(estimate, p.wait_s)
                    await self._backend.leave(ticket, keep_s=retry_after + p.wait_s + TICKET_GRACE_S)
                    instruments.count_budget_refusal(kind)
                    raise StartBudgetExhausted(retry_after)
                near = result.ahead < p.calls
                pause = result.next_free_s if near else estimate / 2
                pause = min(MAX_POLL_S, remaining, max(0.02, pause)) * random.uniform(0.9, 1.1)
                await asyncio.sleep(pause)
        finally:
            instruments.budget_waiting(-1)

    async def complete(self, grant_id: str, *, status_code: int | None, retry_after_s: float | None) -> None:
        """The call came back (or failed in transport): its window starts now. Daily's 429 means
        someone else spends this domain's starts too: nobody calls for its Retry-After (or a window)."""
        block_s = 0.0
        if status_code == 429:
            block_s = retry_after_s if retry_after_s and retry_after_s > 0 else self.policy.window_s
        await self._backend.complete(grant_id, block_s=block_s)

    async def note_not_hosting(self, room: str) -> None:
        # A little shorter than the pace: a start that heard it retries after the pace itself,
        # and must not take its own answer for someone else's.
        await self._backend.note_not_hosting(room, memo_s=0.9 * self.policy.meeting_interval_s)

    async def note_hosting(self, room: str) -> None:
        await self._backend.note_hosting(room)

    async def not_hosting_recently(self, room: str) -> bool:
        return await self._backend.not_hosting_recently(room)


# -- Redis ---------------------------------------------------------------------------------------

# KEYS: 1 grants (zset id -> counted until score + window), 2 queue (ticket -> priority score),
# 3 present (ticket -> presence deadline), 4 tickets (ticket -> expiry), 5 blocked (string),
# 6 paced (ticket -> no call before), 7 streak start (room -> ms), 8 streak seen (room -> ms),
# 9 arrived (ticket -> when it joined the queue).
# ARGV: ticket, retry, calls, window_ms, presence_ms, ticket_ms, hold_ms, pace_ms, grant_id,
# streak_memory_ms, stale_streak_s, stale_penalty_ms, room. Times are Redis's own clock, shared by every replica.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ticket = ARGV[1]
local calls = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZREM', KEYS[9], m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local stale = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now - tonumber(ARGV[10]))
for _, m in ipairs(stale) do redis.call('ZREM', KEYS[7], m) end
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - tonumber(ARGV[10]))
for _, i in ipairs({1, 2, 3, 4, 6, 7, 8, 9}) do redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[10]) + 60000) end
local room = ARGV[13]
local since = redis.call('ZSCORE', KEYS[7], room)
if since then redis.call('ZADD', KEYS[8], now, room) end
local arrived = redis.call('ZSCORE', KEYS[9], ticket)
if arrived then
  arrived = tonumber(arrived)
else
  arrived = now
  redis.call('ZADD', KEYS[9], now, ticket)
end
-- core/start_budget.py priority_class and penalty_s, in milliseconds, from the room's streak now
-- (a kept place sinks when its room turns stale).
local penalty = 0
if since then
  local age = math.max(0, (now - tonumber(since)) / 1000)
  if age >= tonumber(ARGV[11]) then
    penalty = tonumber(ARGV[12])
  else
    penalty = 1000 * 2 ^ math.floor(math.log(1 + age) / math.log(2))
  end
elseif ARGV[2] == '1' then
  penalty = 1000
end
redis.call('ZADD', KEYS[2], arrived + penalty, ticket)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ticket)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[6]), ticket)
local blocked = redis.call('PTTL', KEYS[5])
local used = redis.call('ZCARD', KEYS[1])
local free = calls - used
local ahead = redis.call('ZRANK', KEYS[2], ticket)
local paced = redis.call('ZSCORE', KEYS[6], ticket)
if blocked <= 0 and free > 0 and not paced then
  local waiting_ahead = 0
  if ahead > 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, ahead - 1)) do
      if redis.call('ZSCORE', KEYS[3], m) and not redis.call('ZSCORE', KEYS[6], m) then
        waiting_ahead = waiting_ahead + 1
        if waiting_ahead >= free then break end
      end
    end
  end
  if waiting_ahead < free then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[7]), ARGV[9])
    redis.call('ZREM', KEYS[2], ticket)
    redis.call('ZREM', KEYS[3], ticket)
    redis.call('ZREM', KEYS[4], ticket)
    redis.call('ZREM', KEYS[9], ticket)
    redis.call('ZADD', KEYS[6], now + tonumber(ARGV[8]), ticket)
    return {1, 0, 0, used + 1}
  end
end
local next_free = 0
if blocked > 0 then
  next_free = blocked
elseif free <= 0 then
  -- A call still in flight (counted from its grant plus hold) will most likely come back now.
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  next_free = math.min(tonumber(oldest[2]), now) + window - now
end
if paced then next_free = math.max(next_free, tonumber(paced) - now) end
return {0, math.max(0, next_free), ahead, used}
"""
# KEYS: grants, blocked. ARGV: grant_id, block_ms, keep_ms.
_COMPLETE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
local block = tonumber(ARGV[2])
if block > 0 and redis.call('PTTL', KEYS[2]) < block then
  redis.call('SET', KEYS[2], '1', 'PX', block)
end
return 1
"""
# KEYS: present, tickets. ARGV: ticket, keep_ms.
_LEAVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
# KEYS: streak start, streak seen, memo. ARGV: ticket, memo_ms, streak_memory_ms.
_NOT_HOSTING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[2]))
return 1
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisBudgetBackend:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        p = f"{prefix}start-budget:"
        self._grants, self._queue, self._present, self._tickets = (
            f"{p}{n}" for n in ("grants", "queue", "present", "tickets")
        )
        self._blocked, self._paced = f"{p}blocked", f"{p}paced"
        self._streak_start, self._streak_seen = f"{p}streak-start", f"{p}streak-seen"
        self._arrived = f"{p}arrived"
        self._memo_prefix = f"{p}not-hosting:"
        self._acquire = client.register_script(_ACQUIRE)
        self._complete = client.register_script(_COMPLETE)
        self._leave = client.register_script(_LEAVE)
        self._not_hosting = client.register_script(_NOT_HOSTING)

    async def try_acquire(
        self, ticket: str, room: str, grant_id: str, *, retry: bool, policy: BudgetPolicy
    ) -> TryResult:
        keys = [
            self._grants,
            self._queue,
            self._present,
            self._tickets,
            self._blocked,
            self._paced,
            self._streak_start,
            self._streak_seen,
            self._arrived,
        ]
        args = [
            ticket,
            "1" if retry else "0",
            policy.calls,
            _ms(policy.window_s),
            _ms(PRESENCE_S),
            _ms(policy.wait_s + TICKET_GRACE_S),
            _ms(policy.hold_s),
            _ms(policy.meeting_interval_s),
            grant_id,
            _ms(STREAK_MEMORY_S),
            f"{STALE_STREAK_S:g}",
            f"{penalty_s(STALE_CLASS) * 1000:.0f}",
            room,
        ]
        try:
            granted, next_free_ms, ahead, used = await self._acquire(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc
        return TryResult(bool(int(granted)), int(next_free_ms) / 1000, int(ahead), int(used))

    async def complete(self, grant_id: str, *, block_s: float) -> None:
        try:
            args: list[str | int] = [grant_id, int(block_s * 1000), _ms(STREAK_MEMORY_S)]
            await self._complete(keys=[self._grants, self._blocked], args=args)
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc

    async def leave(self, ticket: str, *, keep_s: float) -> None:
        try:
            await self._leave(keys=[self._present, self._tickets], args=[ticket, _ms(keep_s)])
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc

    async def note_not_hosting(self, room: str, *, memo_s: float) -> None:
        keys = [self._streak_start, self._streak_seen, self._memo_prefix + room]
        try:
            await self._not_hosting(keys=keys, args=[room, _ms(memo_s), _ms(STREAK_MEMORY_S)])
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc

    async def note_hosting(self, room: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._streak_start, room)
                pipe.zrem(self._streak_seen, room)
                pipe.delete(self._memo_prefix + room)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc

    async def not_hosting_recently(self, room: str) -> bool:
        try:
            return bool(await self._redis.exists(self._memo_prefix + room))
        except (RedisError, OSError) as exc:
            raise CoordinationUnavailable(f"redis unavailable ({type(exc).__name__})") from exc


# -- in-process -----------------------------------------------------------------------------------


@dataclass
class _Ticket:
    arrived: float
    score: float = 0.0
    present_until: float = 0.0
    expires: float = 0.0


@dataclass
class LocalBudgetBackend:
    """The same rules inside one process (monotonic clock; each method runs without awaiting,
    so it is atomic in the event loop)."""

    grants: dict[str, float] = field(default_factory=dict)  # id -> counted until score + window
    queue: dict[str, _Ticket] = field(default_factory=dict)
    paced: dict[str, float] = field(default_factory=dict)
    streaks: dict[str, tuple[float, float]] = field(default_factory=dict)  # room -> (start, seen)
    memos: dict[str, float] = field(default_factory=dict)
    blocked_until: float = 0.0

    async def try_acquire(
        self, ticket: str, room: str, grant_id: str, *, retry: bool, policy: BudgetPolicy
    ) -> TryResult:
        now = time.monotonic()
        self._forget(now, policy.window_s)
        streak = self.streaks.get(room)
        if streak is not None:
            self.streaks[room] = (streak[0], now)
        entry = self.queue.get(ticket)
        if entry is None:
            entry = self.queue[ticket] = _Ticket(arrived=now)
        # Scored from the room's streak now: a kept place sinks when its room turns stale.
        age = None if streak is None else now - streak[0]
        entry.score = queue_score(priority_class(retry=retry, streak_age_s=age), entry.arrived * 1000)
        entry.present_until = now + PRESENCE_S
        entry.expires = now + policy.wait_s + TICKET_GRACE_S
        used = len(self.grants)
        free = policy.calls - used
        order = sorted(self.queue, key=lambda k: self.queue[k].score)
        ahead = order.index(ticket)
        paced = self.paced.get(ticket)
        if self.blocked_until <= now and free > 0 and paced is None:
            waiting_ahead = sum(
                1 for k in order[:ahead] if self.queue[k].present_until > now and k not in self.paced
            )
            if waiting_ahead < free:
                self.grants[grant_id] = now + policy.hold_s
                del self.queue[ticket]
                self.paced[ticket] = now + policy.meeting_interval_s
                return TryResult(True, used=used + 1)
        next_free = 0.0
        if self.blocked_until > now:
            next_free = self.blocked_until - now
        elif free <= 0:
            # A call still in flight (counted from its grant plus hold) will most likely come back now.
            next_free = min(min(self.grants.values()), now) + policy.window_s - now
        if paced is not None:
            next_free = max(next_free, paced - now)
        return TryResult(False, max(0.0, next_free), ahead, used)

    def _forget(self, now: float, window_s: float) -> None:
        self.grants = {k: v for k, v in self.grants.items() if v > now - window_s}
        self.queue = {k: v for k, v in self.queue.items() if v.expires > now}
        self.paced = {k: v for k, v in self.paced.items() if v > now}
        self.streaks = {k: v for k, v in self.streaks.items() if v[1] > now - STREAK_MEMORY_S}
        self.memos = {k: v for k, v in self.memos.items() if v > now}

    async def complete(self, grant_id: str, *, block_s: float) -> None:
        now = time.monotonic()
        self.grants[grant_id] = now
        self.blocked_until = max(self.blocked_until, now + block_s)

    async def leave(self, ticket: str, *, keep_s: float) -> None:
        entry = self.queue.get(ticket)
        if entry is not None:
            entry.present_until = 0.0
            entry.expires = time.monotonic() + keep_s

    async def note_not_hosting(self, room: str, *, memo_s: float) -> None:
        now = time.monotonic()
        start = self.streaks.get(room, (now, now))[0]
        self.streaks[room] = (start, now)
        self.memos[room] = now + memo_s

    async def note_hosting(self, room: str) -> None:
        self.streaks.pop(room, None)
        self.memos.pop(room, None)

    async def not_hosting_recently(self, room: str) -> bool:
        return self.memos.get(room, 0.0) > time.monotonic()
