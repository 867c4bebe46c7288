"""Resident memory (VmRSS) of one `serve` process: idle, then after each of 3 x 10,000 signed
webhooks (ready events for registered meetings: each is stored, and applied as the apply queue
keeps up; what overflows it waits in the inbox for the sweep).

    uv run python benchmarks/memory.py [--quick]   (quick: 3 x 2,000)
"""

from __future__ import annotations

import argparse
import asyncio

from harness import (
    bench_database,
    closed_loop,
    make_session,
    redis_prefix,
    rss_mb,
    running,
    service_env,
    spawn_service,
)
from harness import run as harness_run
from webhook_ingest import register_meetings, webhook_request

CONCURRENCY = 16


async def run(args: argparse.Namespace) -> None:
    batch = 2_000 if args.quick else 10_000
    with bench_database() as (db_url, _dsn):
        proc = spawn_service(service_env(db_url, RECORDER_REDIS_PREFIX=redis_prefix()))
        async with running([proc]):
            rooms = await register_meetings(proc.url, 200)
            await asyncio.sleep(1)
            readings = [("idle (after start and 200 meetings)", rss_mb(proc.pid))]
            print(f"{readings[0][0]:<40} {readings[0][1]:7.1f} MB")
            async with make_session(CONCURRENCY, proc.url) as session:
                for n in range(1, 4):
                    res = await closed_loop(
                        f"batch {n}",
                        session,
                        webhook_request(rooms),
                        concurrency=CONCURRENCY,
                        duration_s=3600,
                        max_requests=batch,
                        warmup_s=0,
                        ok=lambda status: status == 200,
                    )
                    await asyncio.sleep(1)
                    readings.append((f"after {n * batch:,} webhooks", rss_mb(proc.pid)))
                    print(
                        f"{readings[-1][0]:<40} {readings[-1][1]:7.1f} MB   ({res.rps:.0f} req/s, err={res.errors})"
                    )
    growth = readings[3][1] - readings[2][1]
    print(
        f"growth between the 2nd and 3rd batch: {growth:+.1f} MB; peak {max(r for _, r in readings):.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    harness_run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
