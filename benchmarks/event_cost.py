"""What one Daily event really costs: acknowledging it, applying it and delivering its callback.

One `serve` process on PostgreSQL and Redis with its background loops on (as deployed), a
callback receiver that verifies each Standard Webhooks signature and answers 200 at once, a
moto S3 server, signed cloud `recording.ready-to-download` events for registered meetings (each
becomes a ready cloud recording and queues one `recording.cloud_ready` callback), closed-loop
senders. Service CPU is read from /proc around each step; every figure is set against a ceiling
measured in the same run:

  1. lone webhook: service CPU per webhook at 1 sender, its apply and its callback delivery
     included (measured until every callback has reached the receiver), ÷ `GET /healthz` at 1;
  2. 64 senders for 5 s: events ÷ (sending time + the time until none is pending and every
     callback is delivered), ÷ the durable-write ceiling (64 connections, one row per commit);
  3. the same run's acknowledgements ÷ that ceiling; p50/p99 at 8 senders;
  4. callback delivery alone: due callbacks put straight into the outbox table, delivered by the
     running service: service CPU per delivered callback and deliveries per second;
  5. playback redirects (each with a playback token) at 1/8/64 senders ÷ `GET /healthz` at the
     same concurrency; the token check alone, in-process.

What bounds goals 1 and 2, measured in the same run: PostgreSQL's own CPU (every `postgres`
process read from /proc, when the server runs on this machine) per event at 64 senders and per
ceiling row, and what the cores allow at those costs; one bare PostgreSQL round trip's CPU on
the service's stack (psycopg, prepared, uvloop) and one rate-limit hit through the service's
Redis adapter, against `/healthz`.

    uv run python benchmarks/event_cost.py [--quick] [--json out.json]

Memory (goal 6) is `benchmarks/memory.py`, with the same set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aioboto3
import aiohttp
import psycopg
import redis.asyncio as aioredis
from aiohttp import web
from harness import (
    PLAYBACK_SECRET,
    LoadResult,
    bench_database,
    closed_loop,
    cpu_seconds,
    free_port,
    make_session,
    postgres_cpu_seconds,
    redis_prefix,
    rounded,
    running,
    service_env,
    spawn_service,
)
from harness import run as harness_run
from moto.server import ThreadedMotoServer
from webhook_ingest import durable_ceiling, healthz, register_meetings, webhook_request

from recorder_service.adapters.coordination import RedisCoordinator
from recorder_service.client import mint_playback_token
from recorder_service.core.playback_tokens import PlaybackTokens

MEETINGS = 50
CALLBACK_KEY = b"bench-callback-key-0123456789abcdef"
CALLBACK_SECRET = "whsec_" + base64.b64encode(CALLBACK_KEY).decode()
REDIS_URL = "redis://127.0.0.1:6379/0"
DRAIN_TIMEOUT_S = float(os.environ.get("BENCH_DRAIN_TIMEOUT_S", "600"))


# -- the callback receiver -----------------------------------------------------------------


@dataclass
class Receiver:
    """Reflector's side: checks each delivery's signature, answers 200, counts distinct ids."""

    ids: set[str] = field(default_factory=set)
    deliveries: int = 0
    bad: int = 0
    first_at: float | None = None
    last_at: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers.get("webhook-id", "")
        signed = f"{msg_id}.{request.headers.get('webhook-timestamp', '')}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(CALLBACK_KEY, signed, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, request.headers.get("webhook-signature", "")):
            self.bad += 1
            return web.Response(status=401)
        now = time.perf_counter()
        self.first_at = self.first_at or now
        self.last_at = now
        self.deliveries += 1
        self.ids.add(msg_id)
        return web.Response(status=200)


@contextlib.asynccontextmanager
async def receiver_server() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/callbacks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver, f"http://127.0.0.1:{port}/callbacks"
    finally:
        await runner.cleanup()


# -- set-up --------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_s3() -> Any:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def deployed_env(db_url: str, callback_url: str, s3_endpoint: str, bucket: str) -> dict[str, str]:
    """The service as `serve` runs in production: loops on, callbacks to Reflector, S3."""
    return service_env(
        db_url,
        RECORDER_BACKGROUND="true",
        RECORDER_REDIS_URL=REDIS_URL,
        RECORDER_REDIS_PREFIX=redis_prefix(),
        RECORDER_CALLBACK_URL=callback_url,
        RECORDER_CALLBACK_SECRET=CALLBACK_SECRET,
        RECORDER_S3_BUCKET=bucket,
        RECORDER_S3_ENDPOINT_URL=s3_endpoint,
    )


async def create_bucket(endpoint: str) -> str:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    async with aioboto3.Session().client("s3", region_name="us-east-1", endpoint_url=endpoint) as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


async def pending_events(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT count(*) FROM inbox_events WHERE state = 'pending'")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def drain(receiver: Receiver, expected: int, dsn: str) -> float:
    """Waits until `expected` distinct callbacks have arrived and no event is pending; returns
    the time that took (the last delivery's arrival, not the poll that saw it). One connection
    for the polling: a new one per poll would fork a PostgreSQL backend 100 times a second and
    count against the server's CPU per event."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            if len(receiver.ids) >= expected and await pending_events(conn) == 0:
                return max(receiver.last_at, started) - started
            if time.perf_counter() - started > DRAIN_TIMEOUT_S:
                raise TimeoutError(
                    f"{len(receiver.ids)} of {expected} callbacks after {DRAIN_TIMEOUT_S} s; "
                    f"stored: {await _states(dsn)}"
                )
            await asyncio.sleep(0.01)


async def _states(dsn: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        counts: dict[str, int] = {}
        for table in ("inbox_events", "callbacks", "recordings"):
            cur = await conn.execute(
                f"SELECT state, count(*) FROM {table} GROUP BY 1".replace(  # noqa: S608
                    "state", "status" if table == "recordings" else "state"
                )
            )
            counts |= {f"{table}.{state}": n for state, n in await cur.fetchall()}
        return counts


@dataclass
class EndToEnd:
    label: str
    acked: LoadResult
    catch_up_s: float
    service_cpu_s: float
    postgres_cpu_s: float | None = None

    @property
    def postgres_ms_per_event(self) -> float | None:
        if self.postgres_cpu_s is None:
            return None
        return self.postgres_cpu_s / self.acked.count * 1000

    @property
    def applied_per_s(self) -> float:
        return self.acked.count / (self.acked.elapsed_s + self.catch_up_s)

    @property
    def cpu_ms_per_event(self) -> float:
        return self.service_cpu_s / self.acked.count * 1000

    def row(self) -> str:
        return (
            f"{self.label:<28} c={self.acked.concurrency:<4} events {self.acked.count:<6} "
            f"acknowledged {self.acked.rps:7.0f}/s (p50 {self.acked.pct_ms(0.5):.2f} ms, "
            f"p99 {self.acked.pct_ms(0.99):.2f} ms)  catch-up {self.catch_up_s:6.2f} s  "
            f"applied+delivered {self.applied_per_s:7.0f}/s  service CPU {self.cpu_ms_per_event:6.2f} ms/event"
            f"  PostgreSQL CPU {_ms(self.postgres_ms_per_event)} ms/event"
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


async def webhooks_end_to_end(
    url: str, pid: int, rooms: list[str], receiver: Receiver, dsn: str, *, concurrency: int, duration_s: float
) -> EndToEnd:
    """Sends for `duration_s`, then waits until every event is applied and its callback delivered."""
    before = len(receiver.ids)
    # Warm-up events are part of the callbacks to wait for; let them drain first.
    async with make_session(concurrency, url) as session:
        warm = await closed_loop(
            "warm-up",
            session,
            webhook_request(rooms),
            concurrency=concurrency,
            duration_s=0.3,
            warmup_s=0,
            ok=lambda status: status == 200,
        )
    await drain(receiver, before + warm.count, dsn)
    before = len(receiver.ids)
    cpu_before = cpu_seconds(pid)
    pg_before = postgres_cpu_seconds()
    async with make_session(concurrency, url) as session:
        acked = await closed_loop(
            f"webhooks end to end, c={concurrency}",
            session,
            webhook_request(rooms, prepared=int(3500 * duration_s)),
            concurrency=concurrency,
            duration_s=duration_s,
            warmup_s=0,
            ok=lambda status: status == 200,
        )
    catch_up = await drain(receiver, before + acked.count, dsn)
    cpu = cpu_seconds(pid) - cpu_before
    pg_after = postgres_cpu_seconds()
    pg = None if pg_before is None or pg_after is None else pg_after - pg_before
    return EndToEnd(f"webhooks c={concurrency}", acked, catch_up, cpu, pg)


_CALLBACK_INSERT = (
    "INSERT INTO callbacks (id, event_type, meeting_id, recording_id, body, state, attempts, "
    "next_attempt_at, created_at) VALUES (%s, 'recording.cloud_ready', %s, %s, %s, 'pending', 0, %s, %s)"
)


async def callback_delivery(dsn: str, pid: int, receiver: Receiver, count: int) -> tuple[float, float]:
    """`count` due callbacks written straight into the outbox; the running service delivers
    them. Returns (service CPU ms per delivered callback, deliveries per second)."""
    before = len(receiver.ids)
    now = datetime.now(UTC)
    body = json.dumps({"type": "recording.cloud_ready", "data": {"bench": True}}).encode()
    rows = [
        (f"msg_bench{uuid.uuid4().hex}", str(uuid.uuid4()), str(uuid.uuid4()), body, now, now)
        for _ in range(count)
    ]
    receiver.first_at = None
    cpu_before = cpu_seconds(pid)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.cursor() as cur:
            await cur.executemany(_CALLBACK_INSERT, rows)
        await conn.commit()
    await drain(receiver, before + count, dsn)
    cpu = cpu_seconds(pid) - cpu_before
    span = receiver.last_at - (receiver.first_at or receiver.last_at)
    return cpu / count * 1000, (count - 1) / span if span > 0 else float("nan")


async def round_trip_us(dsn: str, n: int = 3000) -> float:
    """CPU of one bare PostgreSQL round trip on the service's stack (psycopg, async, prepared,
    on uvloop), in this process: the floor under each statement an event costs."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for i in range(100):  # prepared after psycopg's threshold
            await conn.execute("SELECT %s::int", (i,), prepare=True)
        t0 = time.process_time()
        for i in range(n):
            await conn.execute("SELECT %s::int", (i,), prepare=True)
        return (time.process_time() - t0) / n * 1e6


async def rate_limit_hit_us(n: int = 3000) -> float:
    """CPU of one rate-limit hit through the service's own Redis adapter (one script round trip,
    as a playback redirect pays it), in this process."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        coordinator = RedisCoordinator(client, redis_prefix())
        for _ in range(100):
            await coordinator.hit("bench", limit=10**9, window_s=60)
        t0 = time.process_time()
        for _ in range(n):
            await coordinator.hit("bench", limit=10**9, window_s=60)
        return (time.process_time() - t0) / n * 1e6
    finally:
        await client.aclose()


def token_check_us(n: int = 20_000) -> float:
    tokens = PlaybackTokens(PLAYBACK_SECRET)
    meeting_id = str(uuid.uuid4())
    token = tokens.mint(meeting_id, int(time.time()) + 3600)
    now = time.time()
    t0 = time.perf_counter()
    for _ in range(n):
        tokens.check(meeting_id, token, now)
    return (time.perf_counter() - t0) / n * 1e6


async def playback_step(
    url: str, pid: int, meeting_id: str, concurrency: int, duration_s: float
) -> LoadResult:
    token = mint_playback_token(PLAYBACK_SECRET, meeting_id, int(time.time()) + 3600)
    path = f"/v1/meetings/{meeting_id}/cloud-recording"

    async def redirect(session: aiohttp.ClientSession) -> int:
        async with session.get(path, params={"token": token}, allow_redirects=False) as resp:
            await resp.read()
            return resp.status

    async with make_session(concurrency, url) as session:
        return await closed_loop(
            "playback redirect",
            session,
            redirect,
            concurrency=concurrency,
            duration_s=duration_s,
            ok=lambda status: status == 307,
            service_pid=pid,
        )


async def healthz_step(url: str, pid: int, concurrency: int, duration_s: float) -> LoadResult:
    async with make_session(concurrency, url) as session:
        return await closed_loop(
            "GET /healthz", session, healthz, concurrency=concurrency, duration_s=duration_s, service_pid=pid
        )


# -- the run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    step_s = 2.0 if args.quick else 5.0
    burst_s = 5.0
    out: dict[str, Any] = {"step_s": step_s, "cores": os.cpu_count()}
    with moto_s3() as endpoint, bench_database() as (db_url, dsn):
        bucket = await create_bucket(endpoint)
        async with receiver_server() as (receiver, callback_url):
            proc = spawn_service(deployed_env(db_url, callback_url, endpoint, bucket), background=True)
            async with running([proc]):
                rooms = await register_meetings(proc.url, MEETINGS)
                await asyncio.sleep(1)  # the loops' first passes
                print(f"{step_s:.0f} s per step; machine cores: {os.cpu_count()}; background loops on")

                health = {c: await healthz_step(proc.url, proc.pid, c, step_s) for c in (1, 8, 64)}
                for res in health.values():
                    print(res.row())

                lone = await webhooks_end_to_end(
                    proc.url, proc.pid, rooms, receiver, dsn, concurrency=1, duration_s=args.lone_s or step_s
                )
                print(lone.row())
                eight = await webhooks_end_to_end(
                    proc.url, proc.pid, rooms, receiver, dsn, concurrency=8, duration_s=step_s
                )
                print(eight.row())
                burst = await webhooks_end_to_end(
                    proc.url, proc.pid, rooms, receiver, dsn, concurrency=64, duration_s=burst_s
                )
                print(burst.row())

                cb_cpu_ms, cb_rate = await callback_delivery(
                    dsn, proc.pid, receiver, 2000 if args.quick else 5000
                )
                print(
                    f"callback delivery alone: service CPU {cb_cpu_ms:.3f} ms per callback, {cb_rate:.0f} deliveries/s"
                )

                meeting_id = await _a_meeting_with_recording(dsn)
                play = {c: await playback_step(proc.url, proc.pid, meeting_id, c, step_s) for c in (1, 8, 64)}
                for res in play.values():
                    print(res.row())
                if receiver.bad:
                    print(f"!! {receiver.bad} callbacks failed the receiver's signature check")
        ceiling = await durable_ceiling(dsn, step_s)
        print(ceiling.row())
        rt_us = await round_trip_us(dsn)
        print(
            f"one bare PostgreSQL round trip (psycopg, prepared, uvloop), in-process: {rt_us:.0f} µs of CPU"
        )
        hit_us = await rate_limit_hit_us()
        print(f"one rate-limit hit (the service's Redis adapter), in-process: {hit_us:.0f} µs of CPU")
    token_us = token_check_us()
    print(f"playback token check, in-process: {token_us:.1f} µs")

    h1 = health[1].cpu_ms_per_request or float("nan")
    h8 = health[8].cpu_ms_per_request or float("nan")
    ratios = {
        "1_lone_webhook_cpu_vs_healthz": lone.cpu_ms_per_event / h1,
        "1_round_trip_cpu_vs_healthz": rt_us / 1000 / h1,
        "2_applied_end_to_end_vs_ceiling_at_64": burst.applied_per_s / ceiling.rps,
        "3_acknowledged_vs_ceiling_at_64": burst.acked.rps / ceiling.rps,
        "3_p99_ms_at_8": eight.acked.pct_ms(0.99),
        "4_callback_cpu_ms": cb_cpu_ms,
        "4_callback_deliveries_per_s": cb_rate,
        "5_playback_vs_healthz_at_8": play[8].rps / health[8].rps,
        "5_round_trips_cpu_vs_healthz_at_8": (rt_us + hit_us) / 1000 / h8,
        "5_playback_64_vs_8": play[64].rps / play[8].rps,
        "5_token_check_us": token_us,
    }
    print()
    print(
        f"1 lone webhook: {lone.cpu_ms_per_event:.2f} ms ÷ /healthz {h1:.3f} ms = {ratios['1_lone_webhook_cpu_vs_healthz']:.1f}x   (goal ≤ 5x)"
    )
    print(
        f"  one PostgreSQL round trip {rt_us:.0f} µs = {ratios['1_round_trip_cpu_vs_healthz']:.2f}x /healthz: "
        f"5x allows {5 / ratios['1_round_trip_cpu_vs_healthz']:.1f} round trips per event and no HTTP"
    )
    print(
        f"2 applied end to end at 64: {burst.applied_per_s:.0f}/s ÷ durable ceiling {ceiling.rps:.0f}/s = "
        f"{ratios['2_applied_end_to_end_vs_ceiling_at_64']:.3f}   (goal ≥ 0.5)"
    )
    print(
        f"3 acknowledged at 64: {burst.acked.rps:.0f}/s ÷ {ceiling.rps:.0f}/s = "
        f"{ratios['3_acknowledged_vs_ceiling_at_64']:.2f}   (goal ≥ 1.0); p99 at 8: {ratios['3_p99_ms_at_8']:.2f} ms"
    )
    pg_event_ms = burst.postgres_ms_per_event
    pg_per_row_ms = ceiling.postgres_cpu_ms_per_request
    if pg_event_ms is not None and pg_per_row_ms is not None:
        # Even with a service and senders that cost nothing, the server cannot apply events
        # faster than its cores allow at its own CPU per event.
        pg_bound = (os.cpu_count() or 1) * 1000 / pg_event_ms
        ratios["2_postgres_cpu_event_vs_ceiling_row"] = pg_event_ms / pg_per_row_ms
        ratios["2_postgres_bound_vs_ceiling"] = pg_bound / ceiling.rps
        both_ms = burst.cpu_ms_per_event + pg_event_ms
        both_bound = (os.cpu_count() or 1) * 1000 / both_ms
        ratios["2_service_and_postgres_bound_vs_ceiling"] = both_bound / ceiling.rps
        print(
            f"  PostgreSQL CPU per event at 64 {pg_event_ms:.2f} ms = {pg_event_ms / pg_per_row_ms:.1f}x per "
            f"ceiling row ({pg_per_row_ms:.2f} ms): its {os.cpu_count()} cores alone bound applied at "
            f"{pg_bound:.0f}/s = {ratios['2_postgres_bound_vs_ceiling']:.2f}x the ceiling"
        )
        print(
            f"  service + PostgreSQL {both_ms:.2f} ms of CPU per event: the cores bound applied at "
            f"{both_bound:.0f}/s = {ratios['2_service_and_postgres_bound_vs_ceiling']:.2f}x the ceiling; "
            f"0.5x needs ≤ {(os.cpu_count() or 1) * 1000 / (0.5 * ceiling.rps):.2f} ms for both"
        )
    print(f"4 callback delivery: {cb_cpu_ms:.3f} ms of CPU each (goal < 1 ms), {cb_rate:.0f}/s")
    print(
        f"5 playback: c=8 {play[8].rps:.0f}/s ÷ /healthz c=8 {health[8].rps:.0f}/s = "
        f"{ratios['5_playback_vs_healthz_at_8']:.0%} (goal ≥ 25 %); c=64 {play[64].rps:.0f}/s "
        f"({ratios['5_playback_64_vs_8']:.2f}x c=8, goal ≥ 1); token check {token_us:.1f} µs (goal ≤ 20)"
    )
    print(
        f"  a redirect's two round trips alone (PostgreSQL read {rt_us:.0f} µs + rate-limit hit {hit_us:.0f} µs) "
        f"= {ratios['5_round_trips_cpu_vs_healthz_at_8']:.1f}x a /healthz at 8 ({h8 * 1000:.0f} µs); "
        f"25 % allows 4x for the whole request"
    )
    out["ratios"] = {k: round(v, 4) for k, v in ratios.items()}
    out["steps"] = (
        [r.as_dict() for r in health.values()]
        + [
            {
                **e.acked.as_dict(),
                "catch_up_s": round(e.catch_up_s, 3),
                "applied_per_s": round(e.applied_per_s, 1),
                "service_cpu_ms_per_event": round(e.cpu_ms_per_event, 3),
                "postgres_cpu_ms_per_event": rounded(e.postgres_ms_per_event),
            }
            for e in (lone, eight, burst)
        ]
        + [r.as_dict() for r in play.values()]
        + [ceiling.as_dict()]
    )
    return out


async def _a_meeting_with_recording(dsn: str) -> str:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT meeting_id FROM recordings WHERE status = 'ready' AND type = 'cloud' LIMIT 1"
        )
        row = await cur.fetchone()
        assert row is not None, "no ready cloud recording"
        return str(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s per step (the 64-sender burst stays 5 s)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--lone-s", type=float, help="seconds of the 1-sender step (longer, to attach a profiler to it)"
    )
    args = parser.parse_args()
    results = harness_run(run(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
