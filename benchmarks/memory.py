"""Resident memory (VmRSS) of one `serve` process as it runs in production: background loops on
(outbox, sweeps, reconciler), callbacks to a receiver that verifies each signature and answers
200, S3 configured (a moto server), Redis. Idle, then after each of 3 x 10,000 signed webhooks
(ready cloud recordings for registered meetings: each is stored, applied, and queues one
`recording.cloud_ready` callback). After each batch it reads RSS twice: as the last webhook is
answered, and once every callback has reached the receiver and no event is pending.

    uv run python benchmarks/memory.py [--quick] [--env NAME=VALUE ...]   (quick: 3 x 2,000)

`--env` adds variables to the service's environment (e.g. MALLOC_ARENA_MAX=2), to measure a
lever without editing code. Same set-up as benchmarks/event_cost.py.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from event_cost import create_bucket, deployed_env, drain, moto_s3, receiver_server
from harness import bench_database, closed_loop, make_session, running, spawn_service
from harness import run as harness_run
from webhook_ingest import register_meetings, webhook_request

CONCURRENCY = 16
MEETINGS = 200


def status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (kB) and Threads from /proc/<pid>/status."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "Threads"}
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in wanted:
            out[name] = int(value.split()[0])
    return out


def reading(label: str, pid: int, extra: str = "") -> float:
    s = status(pid)
    rss = s["VmRSS"] / 1024
    print(
        f"{label:<44} {rss:7.1f} MB  (anon {s['RssAnon'] / 1024:6.1f}, file {s['RssFile'] / 1024:5.1f}, "
        f"threads {s['Threads']}){extra}"
    )
    return rss


async def run(args: argparse.Namespace) -> None:
    batch = 2_000 if args.quick else 10_000
    extra_env = dict(item.split("=", 1) for item in args.env)
    with moto_s3() as endpoint, bench_database() as (db_url, dsn):
        bucket = await create_bucket(endpoint)
        async with receiver_server() as (receiver, callback_url):
            env = {**deployed_env(db_url, callback_url, endpoint, bucket), **extra_env}
            proc = spawn_service(env, background=True)
            async with running([proc]):
                rooms = await register_meetings(proc.url, MEETINGS)
                await asyncio.sleep(2)  # the loops' first passes
                idle = reading(f"idle (started, {MEETINGS} meetings)", proc.pid)
                answered: list[float] = []
                drained: list[float] = []
                async with make_session(CONCURRENCY, proc.url) as session:
                    for n in range(1, 4):
                        before = len(receiver.ids)
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
                        answered.append(
                            reading(
                                f"after {n * batch:,} webhooks, answered",
                                proc.pid,
                                f"  {res.rps:.0f} req/s, err={res.errors}",
                            )
                        )
                        catch_up = await drain(receiver, before + res.count, dsn)
                        await asyncio.sleep(1)
                        drained.append(
                            reading(
                                f"after {n * batch:,} webhooks, callbacks drained",
                                proc.pid,
                                f"  catch-up {catch_up:.1f} s, {len(receiver.ids):,} callbacks",
                            )
                        )
                if receiver.bad:
                    print(f"!! {receiver.bad} callbacks failed the receiver's signature check")
    print(
        f"idle {idle:.1f} MB; after 3 batches (drained) {drained[2]:.1f} MB: growth vs idle "
        f"{drained[2] - idle:+.1f} MB, between the 2nd and 3rd batch {drained[2] - drained[1]:+.1f} MB; "
        f"peak {max([idle, *answered, *drained]):.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    harness_run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
