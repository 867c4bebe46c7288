"""Daily's start budget under a wave of meetings and under attack, over 3 replicas sharing
PostgreSQL and Redis, against the Daily simulator (its own process) with Daily's limit switched
on: it answers 429 beyond 5 recording starts in any 5 s, and it logs every start call's arrival.

Wave: 100 meetings whose first participants join within 30 s; each participant's browser starts
both types (cloud and raw-tracks) and honours Retry-After on 409 and 429, as the TypeScript client
does. Figures: every recording started?, the most start calls Daily saw in any 5 s, Daily's 429s,
join → started (p50, p99), and the time until the last one started against the floor Daily's limit
sets (one call a second: 200 calls take 200 s), and how closely starts follow the join order.

Attack: 50 anonymous clients keep hammering 50 registered meetings whose rooms are empty, while 20
real meetings start (both types). Figures: every real one started?, join → started, the most start
calls in any 5 s, Daily's 429s, and the Daily calls the attack cost per second.

    uv run python benchmarks/start_budget.py [--quick] [--scenario wave|attack|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from harness import (
    AUTH,
    REDIS_URL,
    bench_database,
    meeting_body,
    redis_prefix,
    running,
    service_env,
    spawn_service,
    spawn_simulator,
)
from harness import run as harness_run

from recorder_service.tools.simulator.faults import max_in_window

REPLICAS = 3
TYPES = ("raw-tracks", "cloud")
DAILY_LIMIT = (5, 5.0)


@dataclass
class Stack:
    urls: list[str]
    sim_url: str


@contextlib.asynccontextmanager
async def stack(hosting_delay_s: float) -> AsyncIterator[Stack]:
    calls, window = DAILY_LIMIT
    sim = spawn_simulator(
        None, "--start-rate-limit", f"{calls}/{window:g}", "--hosting-delay", str(hosting_delay_s)
    )
    with bench_database() as (db_url, _dsn):
        env = service_env(
            db_url,
            f"{sim.url}/v1",
            RECORDER_REDIS_URL=REDIS_URL,
            RECORDER_REDIS_PREFIX=redis_prefix(),
            RECORDER_CLOUD_START="server",
            # Every client below has its own address, sent as the (trusted) loopback proxy's
            # X-Forwarded-For: the per-client limit applies per client, at its default.
            RECORDER_TRUSTED_PROXIES="127.0.0.1",
            RECORDER_RATE_LIMIT_PER_MINUTE="600",
        )
        procs = [spawn_service(env) for _ in range(REPLICAS)]
        try:
            async with running([sim], "/_sim/calls"), running(procs):
                yield Stack([p.url for p in procs], sim.url)
        finally:
            # What the replicas logged at WARNING and above (5xx answers among them), counted.
            lines = [
                line
                for p in procs
                for line in p.log_tail(1 << 22).splitlines()
                if '"level"' in line or "->" in line
            ]
            kinds: dict[str, int] = {}
            for line in lines:
                key = line.split('"msg": "', 1)[-1][:90]
                kinds[key] = kinds.get(key, 0) + 1
            for key, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]:
                print(f"  replica log x{n}: {key}")


async def register(stack: Stack, meetings: list[tuple[str, str]]) -> None:
    async with httpx.AsyncClient(timeout=30) as admin:
        for meeting_id, room in meetings:
            r = await admin.put(
                f"{stack.urls[0]}/v1/meetings/{meeting_id}", json=meeting_body(room), headers=AUTH
            )
            assert r.status_code == 201, r.text


async def join(session: aiohttp.ClientSession, stack: Stack, room: str) -> None:
    async with session.post(f"{stack.sim_url}/_sim/rooms/{room}/join", json={"user_name": "Bench"}) as r:
        r.raise_for_status()


@dataclass
class Browser:
    """One participant's browser starting one type: retries until started, honouring Retry-After."""

    answers: dict[int, int] = field(default_factory=dict)

    async def start(
        self, session: aiohttp.ClientSession, url: str, rec_type: str, address: str, deadline: float
    ) -> float | None:
        headers = {"X-Forwarded-For": address}
        while time.monotonic() < deadline:
            try:
                async with session.post(url, json={"type": rec_type}, headers=headers) as r:
                    status = r.status
                    retry_after = r.headers.get("Retry-After")
                    await r.read()
            except aiohttp.ClientError:
                status, retry_after = 0, None
            self.answers[status] = self.answers.get(status, 0) + 1
            if status == 200:
                return time.monotonic()
            await asyncio.sleep(float(retry_after) if retry_after else 1.0)
        return None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def daily_calls(stack: Stack) -> tuple[list[dict[str, Any]], dict[str, int]]:
    async with httpx.AsyncClient(timeout=30) as admin:
        times = (
            await admin.get(f"{stack.sim_url}/_sim/calls/times", params={"window_s": DAILY_LIMIT[1]})
        ).json()
        operations = (await admin.get(f"{stack.sim_url}/_sim/calls")).json()["operations"]
    return times["calls"], operations.get("start_recording", {})


def order_agreement(joins: list[float], starts: list[float]) -> float:
    """Of all pairs of meetings, the share that started in the order they joined."""
    pairs = agreeing = 0
    for i in range(len(joins)):
        for j in range(i + 1, len(joins)):
            if joins[i] == joins[j]:
                continue
            pairs += 1
            first, second = (i, j) if joins[i] < joins[j] else (j, i)
            agreeing += starts[first] <= starts[second]
    return agreeing / pairs if pairs else 1.0


async def wave(args: argparse.Namespace) -> None:
    count, spread_s = (20, 6.0) if args.quick else (args.meetings, args.spread)
    meetings = [(str(uuid.uuid4()), f"wave-{i:03d}-{uuid.uuid4().hex[:6]}") for i in range(count)]
    rng = random.Random(17)
    offsets = sorted(rng.uniform(0, spread_s) for _ in meetings)
    print(
        f"wave: {count} meetings joining within {spread_s:.0f} s, both types each, {REPLICAS} replicas, "
        f"Daily: {DAILY_LIMIT[0]} starts per {DAILY_LIMIT[1]:g} s, rooms host {args.hosting_delay:g} s after the join"
    )
    async with stack(args.hosting_delay) as s:
        await register(s, meetings)
        browser = Browser()
        joined: dict[str, float] = {}
        started: dict[tuple[str, str], float | None] = {}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            t0 = time.monotonic()
            deadline = t0 + spread_s + 20 * count

            async def participant(i: int) -> None:
                meeting_id, room = meetings[i]
                await asyncio.sleep(max(0.0, t0 + offsets[i] - time.monotonic()))
                await join(session, s, room)
                joined[meeting_id] = time.monotonic()
                url = f"{s.urls[i % REPLICAS]}/v1/meetings/{meeting_id}/recordings/start"
                address = f"198.51.{i // 250}.{i % 250 + 1}"
                results = await asyncio.gather(
                    *(browser.start(session, url, t, address, deadline) for t in TYPES)
                )
                for rec_type, at in zip(TYPES, results, strict=True):
                    started[(meeting_id, rec_type)] = at

            await asyncio.gather(*(participant(i) for i in range(count)))
        calls, outcomes = await daily_calls(s)
    done = {k: v for k, v in started.items() if v is not None}
    latencies = [v - joined[m] for (m, _t), v in done.items()]
    first_join = min(joined.values())
    last_started = max(done.values()) - first_join
    floor_s = len(started) * DAILY_LIMIT[1] / DAILY_LIMIT[0]
    call_times = [c["at"] for c in calls]
    per_meeting_start = [
        max(done[(m, t)] for t in TYPES) for m, _room in meetings if all((m, t) in done for t in TYPES)
    ]
    print(f"  recordings started: {len(done)} of {len(started)}")
    print(
        f"  Daily start calls: {len(calls)} (answers {outcomes}); most in any {DAILY_LIMIT[1]:g} s: "
        f"{max_in_window(call_times, DAILY_LIMIT[1])}; Daily's 429s: {outcomes.get('429', 0)}"
    )
    print(
        f"  join -> started: p50 {pct(latencies, 0.5):.1f} s, p99 {pct(latencies, 0.99):.1f} s, max {max(latencies):.1f} s"
    )
    print(
        f"  first join -> last started: {last_started:.1f} s; floor at 1 call/s: {floor_s:.0f} s "
        f"({(last_started / floor_s - 1) * 100:+.1f} %)"
    )
    print(
        f"  start order follows join order for {order_agreement([joined[m] for m, _ in meetings], per_meeting_start) * 100:.1f} % "
        f"of meeting pairs; browser answers {dict(sorted(browser.answers.items()))}"
    )


async def attack(args: argparse.Namespace) -> None:
    attackers, real = (10, 5) if args.quick else (50, 20)
    warmup_s = args.warmup if args.warmup is not None else (40.0 if args.quick else 90.0)
    targets = [(str(uuid.uuid4()), f"empty-{i:02d}-{uuid.uuid4().hex[:6]}") for i in range(attackers)]
    meetings = [(str(uuid.uuid4()), f"real-{i:02d}-{uuid.uuid4().hex[:6]}") for i in range(real)]
    print(
        f"attack: {attackers} anonymous clients hammering {attackers} registered meetings with empty rooms "
        f"({args.attack_rate:g} requests/s each); after {warmup_s:.0f} s, {real} real meetings join within 10 s "
        f"(both types); {REPLICAS} replicas"
    )
    async with stack(args.hosting_delay) as s:
        await register(s, targets + meetings)
        stop = asyncio.Event()
        attack_answers: dict[int, int] = {}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:

            async def attacker(i: int) -> None:
                meeting_id, _room = targets[i]
                url = f"{s.urls[i % REPLICAS]}/v1/meetings/{meeting_id}/recordings/start"
                headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
                n = 0
                while not stop.is_set():
                    sent = time.monotonic()
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.post(url, json={"type": TYPES[n % 2]}, headers=headers) as r:
                            attack_answers[r.status] = attack_answers.get(r.status, 0) + 1
                            await r.read()
                    n += 1
                    await asyncio.sleep(max(0.0, 1 / args.attack_rate - (time.monotonic() - sent)))

            attack_tasks = [asyncio.create_task(attacker(i)) for i in range(attackers)]
            t_attack, wall_attack = time.monotonic(), time.time()
            await asyncio.sleep(warmup_s)
            browser = Browser()
            joined: dict[str, float] = {}
            started: dict[tuple[str, str], float | None] = {}
            t0, wall_real = time.monotonic(), time.time()
            deadline = t0 + 600
            offsets = sorted(random.Random(23).uniform(0, 10) for _ in meetings)

            async def participant(i: int) -> None:
                meeting_id, room = meetings[i]
                await asyncio.sleep(max(0.0, t0 + offsets[i] - time.monotonic()))
                await join(session, s, room)
                joined[meeting_id] = time.monotonic()
                url = f"{s.urls[i % REPLICAS]}/v1/meetings/{meeting_id}/recordings/start"
                results = await asyncio.gather(
                    *(browser.start(session, url, t, f"198.51.100.{i + 1}", deadline) for t in TYPES)
                )
                for rec_type, at in zip(TYPES, results, strict=True):
                    started[(meeting_id, rec_type)] = at

            await asyncio.gather(*(participant(i) for i in range(real)))
            stop.set()
            await asyncio.gather(*attack_tasks)
            t_end = time.monotonic()
        calls, outcomes = await daily_calls(s)
    target_rooms = {room for _m, room in targets}
    if args.trace:
        for c in calls:
            kind = "attack" if c["room"] in target_rooms else "real"
            print(f"    {c['at'] - wall_attack:7.2f} {kind} {c['room']}")
    # The simulator stamps calls with the wall clock of this same machine.
    done = {k: v for k, v in started.items() if v is not None}
    real_from = wall_real + (min(joined.values()) - t0)
    real_to = wall_real + (max(done.values(), default=t0) - t0)
    attack_calls = [c["at"] for c in calls if c["room"] in target_rooms]
    before = [a for a in attack_calls if wall_attack <= a < wall_real]
    during = [a for a in attack_calls if real_from <= a <= real_to]
    latencies = [v - joined[m] for (m, _t), v in done.items()]
    print(f"  real recordings started: {len(done)} of {len(started)}")
    print(
        f"  real join -> started: p50 {pct(latencies, 0.5):.1f} s, p99 {pct(latencies, 0.99):.1f} s, max {max(latencies):.1f} s"
    )
    print(
        f"  Daily start calls: {len(calls)} (answers {outcomes}); most in any {DAILY_LIMIT[1]:g} s: "
        f"{max_in_window([c['at'] for c in calls], DAILY_LIMIT[1])}; Daily's 429s: {outcomes.get('429', 0)}"
    )
    print(
        f"  Daily calls the attack cost: {len(before) / warmup_s:.2f}/s alone ({len(before)} in {warmup_s:.0f} s), "
        f"{len(during) / max(0.001, real_to - real_from):.2f}/s from the first real join to the last real start "
        f"({len(during)} in {real_to - real_from:.0f} s); {len(attack_calls) / (t_end - t_attack):.2f}/s overall"
    )
    attack_requests = sum(attack_answers.values())
    print(
        f"  attack requests: {attack_requests} ({attack_requests / (t_end - t_attack):.0f}/s), answers "
        f"{dict(sorted(attack_answers.items()))}; real browsers' answers {dict(sorted(browser.answers.items()))}"
    )


async def run(args: argparse.Namespace) -> None:
    if args.scenario in ("wave", "both"):
        await wave(args)
    if args.scenario in ("attack", "both"):
        await attack(args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="20 meetings in 6 s; 10 attackers and 5 real meetings"
    )
    parser.add_argument("--scenario", choices=["wave", "attack", "both"], default="both")
    parser.add_argument("--meetings", type=int, default=100)
    parser.add_argument("--spread", type=float, default=30.0, help="seconds over which the meetings join")
    parser.add_argument(
        "--hosting-delay", type=float, default=1.0, help="Daily hosts a room this long after the join"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds the attack runs alone first (default 90; 40 with --quick): every target has had its"
        " first call and been empty for 30 s",
    )
    parser.add_argument("--trace", action="store_true", help="print every start call Daily received")
    parser.add_argument("--attack-rate", type=float, default=5.0, help="requests per second per attacker")
    harness_run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
