"""Webhook ingest throughput and latency against two ceilings measured on the same machine.

- ingest: signed `recording.ready-to-download` events with unique ids, POSTed to a real
  `serve` process, for a registered meeting ("matched": applied, a ready cloud recording each)
  and for an unknown room ("orphan": stored, matching fails, kept for later);
- HTTP ceiling: `GET /healthz` of the same process at the same concurrencies;
- durable-write ceiling: the same inbox rows inserted by a bare async psycopg loop, 64 tasks,
  each on its own connection, one row per transaction (what one webhook must at least cost).

    uv run python benchmarks/webhook_ingest.py [--quick] [--server uvicorn|granian]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import psycopg
from harness import (
    AUTH,
    LoadResult,
    bench_database,
    closed_loop,
    make_session,
    meeting_body,
    postgres_cpu_seconds,
    ready_event,
    redis_prefix,
    running,
    service_env,
    signed_headers,
    spawn_service,
)
from harness import run as harness_run

CONCURRENCIES = (1, 8, 64)
CEILING_TASKS = 64
# Events spread over this many registered meetings, as real traffic is (one meeting rarely gets
# more than a few recordings); each matched event adds one ready cloud recording.
MEETINGS = 200
# Signed events built before each step (enough for about this many a second, in either mode).
PREPARED_PER_S = 3500


def webhook_request(rooms: list[str], path: str = "/v1/daily/webhook", *, prepared: int = 0) -> Any:
    """Signed ready events with unique ids, round-robin over `rooms`. The first `prepared`
    are built and signed up front, so the load generator (on the same cores as the service)
    spends its time during the run on sending, not on JSON and HMAC; later ones are built as sent."""
    start_ts = time.time() - 3600
    next_room = itertools.cycle(rooms).__next__

    def build() -> tuple[bytes, dict[str, str]]:
        body = ready_event(next_room(), start_ts)
        return body, signed_headers(body)

    ready = collections.deque(build() for _ in range(prepared))

    async def send(session: aiohttp.ClientSession) -> int:
        body, headers = ready.popleft() if ready else build()
        async with session.post(path, data=body, headers=headers) as r:
            await r.read()
            return r.status

    return send


async def healthz(session: aiohttp.ClientSession) -> int:
    async with session.get("/healthz") as r:
        await r.read()
        return r.status


_INSERT = (
    "INSERT INTO inbox_events (id, event_type, state, body, source, room_name, attempts, received_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, 0, %s) ON CONFLICT (id) DO NOTHING RETURNING id"
)


async def durable_ceiling(dsn: str, duration_s: float, *, batch: int = 1) -> LoadResult:
    """Bare psycopg: CEILING_TASKS connections, each committing `batch` rows per transaction."""
    start_ts = time.time() - 3600
    latencies: list[float] = []
    rows = 0

    async def task(deadline: float) -> None:
        nonlocal rows
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=False) as conn:
            while time.perf_counter() < deadline:
                bodies = [ready_event("ceiling-room", start_ts) for _ in range(batch)]
                params = [
                    (
                        json.loads(b)["id"],
                        "recording.ready-to-download",
                        "pending",
                        b,
                        "webhook",
                        "ceiling-room",
                    )
                    for b in bodies
                ]
                t0 = time.perf_counter()
                async with conn.transaction(), conn.cursor() as cur:
                    now = datetime.now(UTC)
                    if batch == 1:
                        await cur.execute(_INSERT, (*params[0], now))
                        assert await cur.fetchone() is not None
                    else:
                        await cur.executemany(_INSERT, [(*p, now) for p in params], returning=True)
                latencies.append(time.perf_counter() - t0)
                rows += batch

    await asyncio.gather(*(task(time.perf_counter() + 0.3) for _ in range(CEILING_TASKS)))  # warm-up
    latencies.clear()
    rows = 0
    pg_before = postgres_cpu_seconds()
    t0 = time.perf_counter()
    await asyncio.gather(*(task(time.perf_counter() + duration_s) for _ in range(CEILING_TASKS)))
    elapsed = time.perf_counter() - t0
    postgres_cpu = None
    if pg_before is not None:
        await asyncio.sleep(0.2)  # the postmaster collects the exited backends' CPU time
        pg_after = postgres_cpu_seconds()
        postgres_cpu = None if pg_after is None else pg_after - pg_before
    label = "durable ceiling (psycopg)" if batch == 1 else f"psycopg, {batch} rows/txn"
    return LoadResult(label, CEILING_TASKS, rows, 0, elapsed, latencies, postgres_cpu_s=postgres_cpu)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    duration_s = 2.0 if args.quick else 8.0
    modes = (
        ("matched",)
        if args.quick and args.mode == "both"
        else (("matched", "orphan") if args.mode == "both" else (args.mode,))
    )
    results: dict[str, Any] = {"server": args.server, "duration_s": duration_s, "runs": []}
    with bench_database() as (db_url, dsn):
        env = service_env(db_url, RECORDER_REDIS_PREFIX=redis_prefix())
        proc = spawn_service(env, server=args.server)
        # granian runs under `uv run`: its pid is uv's, so its CPU time is not measured.
        service_pid = proc.pid if args.server == "uvicorn" else None
        async with running([proc]):
            rooms = await register_meetings(proc.url, MEETINGS)
            print(f"server: {args.server}; {duration_s:.0f} s per step; machine cores: {_cores()}")
            ceilings: dict[int, LoadResult] = {}
            for c in args.concurrency:
                async with make_session(c, proc.url) as client:
                    ceilings[c] = await closed_loop(
                        "HTTP ceiling (GET /healthz)",
                        client,
                        healthz,
                        concurrency=c,
                        duration_s=duration_s,
                        service_pid=service_pid,
                    )
                print(ceilings[c].row())
                results["runs"].append(ceilings[c].as_dict())
            for mode in modes:
                targets = rooms if mode == "matched" else [f"unknown-{uuid.uuid4().hex[:8]}"]
                for c in args.concurrency:
                    async with make_session(c, proc.url) as client:
                        res = await closed_loop(
                            f"ingest ({mode})",
                            client,
                            webhook_request(targets, prepared=int(PREPARED_PER_S * duration_s)),
                            concurrency=c,
                            duration_s=duration_s,
                            ok=lambda status: status == 200,
                            service_pid=service_pid,
                        )
                    print(res.row())
                    results["runs"].append(res.as_dict())
            async with httpx.AsyncClient(base_url=proc.url, timeout=30) as admin:
                states = await _states(admin, modes)
            print(f"inbox states of the last events: {states}")
        durable = await durable_ceiling(dsn, duration_s)
        print(durable.row())
        results["runs"].append(durable.as_dict())
        batched = await durable_ceiling(dsn, duration_s, batch=16)
        print(batched.row() + "  (rows/s)")
        results["runs"].append(batched.as_dict())
    print()
    for mode in modes:
        for c in args.concurrency:
            ingest = next(
                r
                for r in results["runs"]
                if r["label"].startswith(f"ingest ({mode})") and r["concurrency"] == c
            )
            http_c = ceilings[c].rps
            ceiling = min(http_c, durable.rps)
            ratio = ingest["rps"] / ceiling
            print(
                f"ratio {mode:<7} c={c:<3} ingest {ingest['rps']:7.0f} / min(HTTP {http_c:.0f}, "
                f"durable {durable.rps:.0f}) = {ratio:.2f}"
            )
            results.setdefault("ratios", {})[f"{mode}@{c}"] = round(ratio, 3)
    return results


async def register_meetings(url: str, count: int) -> list[str]:
    rooms = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, timeout=30) as admin:

        async def put(room: str) -> None:
            async with limit:
                r = await admin.put(f"/v1/meetings/{uuid.uuid4()}", json=meeting_body(room), headers=AUTH)
                assert r.status_code == 201, r.text

        await asyncio.gather(*(put(room) for room in rooms))
    return rooms


async def _states(admin: httpx.AsyncClient, modes: tuple[str, ...]) -> dict[str, int]:
    r = await admin.get("/v1/daily/events", params={"limit": 200}, headers=AUTH)
    counts: dict[str, int] = {}
    for event in r.json()["events"]:
        counts[event["state"]] = counts.get(event["state"], 0) + 1
    return counts


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s per step, matched events only (< 60 s)")
    parser.add_argument("--server", default="uvicorn", choices=("uvicorn", "granian"))
    parser.add_argument("--mode", default="both", choices=("both", "matched", "orphan"))
    parser.add_argument(
        "--concurrency",
        type=lambda v: tuple(int(c) for c in v.split(",")),
        default=CONCURRENCIES,
        help="senders per step, comma-separated (default 1,8,64)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = harness_run(run(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
