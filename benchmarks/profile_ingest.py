"""Profiles the service process under webhook load with pyinstrument (not a project dependency).

    uv run --with pyinstrument python benchmarks/profile_ingest.py [--mode matched|orphan] [--seconds 8] [--tree]

Writes the text report to benchmarks/out/profile-<mode>.txt and prints its top.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from pathlib import Path

from harness import (
    REPO,
    bench_database,
    closed_loop,
    free_port,
    make_session,
    redis_prefix,
    running,
    service_env,
    spawn_process,
    wait_ready,
)
from harness import run as harness_run
from webhook_ingest import register_meetings, webhook_request


async def run(args: argparse.Namespace) -> Path:
    out = REPO / "benchmarks" / "out" / f"profile-{args.mode}.txt"
    out.parent.mkdir(exist_ok=True)
    with bench_database() as (db_url, _dsn):
        port = free_port()
        command = [
            *(sys.executable, "-m", "pyinstrument", "-r", "text", "-p", f"flat={str(not args.tree).lower()}"),
            *("-o", str(out)),
            *("-m", "recorder_service.cli", "serve", "--port", str(port), "--no-background"),
        ]
        proc = spawn_process(command, service_env(db_url, RECORDER_REDIS_PREFIX=redis_prefix()), port)
        popen = proc.popen
        async with running([]):
            await wait_ready(proc)
            rooms = await register_meetings(proc.url, 200)
            targets = rooms if args.mode == "matched" else [f"unknown-{uuid.uuid4().hex[:8]}"]
            async with make_session(args.concurrency, proc.url) as session:
                res = await closed_loop(
                    f"ingest ({args.mode}) under pyinstrument",
                    session,
                    webhook_request(targets),
                    concurrency=args.concurrency,
                    duration_s=args.seconds,
                )
            print(res.row())
            # uvicorn shuts down on SIGINT; pyinstrument then writes its report.
            popen.send_signal(signal.SIGINT)
            await asyncio.to_thread(popen.wait, 60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", default="matched", choices=("matched", "orphan"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--tree", action="store_true", help="call tree instead of a flat list")
    out = harness_run(run(parser.parse_args()))
    print(out.read_text()[:6000])


if __name__ == "__main__":
    main()
