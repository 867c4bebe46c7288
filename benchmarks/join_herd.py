"""A herd of start calls: 200 at once for one meeting, across 3 replicas (PostgreSQL + Redis),
the Daily simulator (its own process) answering starts after 100 ms. Daily must see 1 start.

    uv run python benchmarks/join_herd.py [--quick] [--rounds N] [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

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
    summary,
)
from harness import run as harness_run

REPLICAS = 3


async def one_round(urls: list[str], sim_url: str, calls: int) -> tuple[list[float], dict[str, int], int]:
    meeting_id, room = str(uuid.uuid4()), f"herd-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=30) as admin:
        r = await admin.put(f"{urls[0]}/v1/meetings/{meeting_id}", json=meeting_body(room), headers=AUTH)
        assert r.status_code == 201, r.text
        r = await admin.post(f"{sim_url}/_sim/rooms/{room}/join", json={"user_name": "Bench"})
        r.raise_for_status()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=calls + 8)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        # Connections opened first: the herd measures the service, not TCP handshakes.
        await asyncio.gather(*(session.get(f"{urls[i % REPLICAS]}/healthz") for i in range(calls)))
        gate = asyncio.Event()

        async def start(i: int) -> None:
            await gate.wait()
            t0 = time.perf_counter()
            url = f"{urls[i % REPLICAS]}/v1/meetings/{meeting_id}/recordings/start"
            async with session.post(url, json={"type": "raw-tracks"}) as resp:
                body = await resp.json()
            latencies.append(time.perf_counter() - t0)
            key = str(body.get("status", resp.status))
            statuses[key] = statuses.get(key, 0) + 1

        tasks = [asyncio.create_task(start(i)) for i in range(calls)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*tasks)
    async with httpx.AsyncClient(timeout=30) as admin:
        calls_seen = (await admin.get(f"{sim_url}/_sim/calls")).json()
    starts = sum(s["count"] for s in calls_seen["starts"] if s["room_name"] == room)
    return latencies, statuses, starts


async def run(args: argparse.Namespace) -> None:
    rounds = 1 if args.quick else args.rounds
    sim = spawn_simulator()
    with bench_database() as (db_url, _dsn):
        env = service_env(
            db_url, f"{sim.url}/v1", RECORDER_REDIS_URL=REDIS_URL, RECORDER_REDIS_PREFIX=redis_prefix()
        )
        procs = [spawn_service(env) for _ in range(REPLICAS)]
        async with running([sim], "/_sim/calls"), running(procs):
            async with httpx.AsyncClient(timeout=30) as admin:
                r = await admin.post(
                    f"{sim.url}/_sim/latency", json={"operation": "start_recording", "latency_s": 0.1}
                )
                r.raise_for_status()
            everything: list[float] = []
            for n in range(rounds):
                latencies, statuses, starts = await one_round([p.url for p in procs], sim.url, args.calls)
                everything += latencies
                print(f"round {n + 1}: {summary(latencies)}  answers {statuses}  Daily starts: {starts}")
                assert starts == 1, f"Daily received {starts} starts"
            print(f"all rounds ({args.calls} calls x {rounds}, {REPLICAS} replicas): {summary(everything)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    harness_run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
