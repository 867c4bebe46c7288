"""recorder-service command line. The only place that reads os.environ."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import types
from collections.abc import Sequence
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recorder-service", description="Orchestrates Daily.co meeting recordings for Reflector."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API (and the background loops unless disabled)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument(
        "--no-background",
        action="store_true",
        help="do not run the background loops here (same as RECORDER_BACKGROUND=false)",
    )

    sub.add_parser("worker", help="run only the background loops (callback delivery, reconciliation)")
    sub.add_parser("migrate", help="upgrade the database schema to the latest revision")

    sim = sub.add_parser("simulate-daily", help="run the Daily.co API simulator (tests and demos)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8900)
    sim.add_argument(
        "--s3-endpoint-url", help="write finished recordings to this S3-compatible store (needs --s3-bucket)"
    )
    sim.add_argument("--s3-bucket", help="bucket for finished recordings, as Daily's custom bucket")
    sim.add_argument(
        "--start-rate-limit",
        metavar="CALLS/SECONDS",
        help="answer 429 to recording starts beyond CALLS in any SECONDS, as Daily does (e.g. 5/5)",
    )
    sim.add_argument(
        "--hosting-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="a room answers 'not hosting' for this long after its first participant joined",
    )

    demo = sub.add_parser("demo", help="play one meeting through the whole service on embedded defaults")
    demo.add_argument("--keep-running", action="store_true", help="leave the service up afterwards")

    daily = sub.add_parser("daily", help="talk to Daily's API")
    daily_sub = daily.add_subparsers(dest="daily_command", required=True, metavar="DAILY_COMMAND")
    probe = daily_sub.add_parser("probe", help="check Daily's start/instanceId behaviour in a room")
    probe.add_argument("--room", required=True)
    webhook = daily_sub.add_parser("webhook", help="manage the domain's Daily webhook")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True, metavar="WEBHOOK_COMMAND")
    ensure = webhook_sub.add_parser(
        "ensure", help="create the webhook, or re-activate ours if Daily marked it FAILED"
    )
    ensure.add_argument("--url", required=True)
    webhook_sub.add_parser("list", help="list the domain's webhooks")
    return parser


def defer_httpx_cli() -> None:
    """httpx's package __init__ imports its own command-line client (click, rich, pygments:
    about 6 MB resident in every process) whenever those are installed, and Litestar's CLI
    installs them. No command here runs `httpx` as a program, so a stand-in takes the place of
    `httpx._main` before httpx is first imported; `httpx.main()` still works (it loads the real
    client on its first call). Only this process's entry point does this: the library
    (recorder_service.client) leaves its host's imports alone."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "stand-in until httpx.main() is called (recorder_service.cli)")

    def main(*args: Any, **kwargs: Any) -> Any:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]
        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    defer_httpx_cli()
    from recorder_service import commands  # imported late: --help stays fast

    return (
        asyncio.run(commands.dispatch(args, dict(os.environ)))
        if args.command != "serve"
        else commands.serve(args, dict(os.environ))
    )


if __name__ == "__main__":
    sys.exit(main())
