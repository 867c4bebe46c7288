"""What each CLI command does. cli.py parses; this runs."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from recorder_service.settings import ConfigError, Settings, load_settings, unknown_variables

if TYPE_CHECKING:
    from recorder_service.telemetry import Telemetry

log = logging.getLogger("recorder_service")


def configure(env: Mapping[str, str]) -> Settings:
    """Loads settings or exits with one clear line naming the variable."""
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"recorder-service: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from recorder_service.logs import setup_logging

    setup_logging(settings)
    for name in unknown_variables(env):
        log.warning("unknown setting %s ignored (a typo?)", name)
    return settings


def init_telemetry(env: Mapping[str, str]) -> Telemetry:
    """Traces and metrics for this process, per the standard OTEL_* variables."""
    from recorder_service.telemetry.setup import install_telemetry

    return install_telemetry(env)


def serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import uvicorn

    from recorder_service.app import create_app

    settings = configure(env)
    if settings.database_url.startswith("sqlite"):
        from recorder_service.adapters.db.migrate import upgrade

        upgrade(settings.database_url)  # embedded default: the file is ours to create
    elif not asyncio.run(schema_is_current(settings.database_url)):
        print(
            "recorder-service: the database schema is not at the latest revision: "
            "run `recorder-service migrate` first",
            file=sys.stderr,
        )
        return 2
    app = create_app(
        settings,
        run_background=False if args.no_background else None,
        telemetry=init_telemetry(env),
        freeze_heap=True,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        # Never believe X-Forwarded-For here: the rate limit reads it behind RECORDER_TRUSTED_PROXIES only.
        proxy_headers=False,
        ws="none",  # no WebSocket routes: uvicorn then never imports the websockets package
    )
    server = uvicorn.Server(config)
    if settings.metrics_port is None:
        server.run()
    else:
        # One server, two sockets: the app tells them apart (http/ops.py MetricsPortSplit).
        server.run(sockets=[_listening(args.host, args.port), _listening(args.host, settings.metrics_port)])
    return 0


def _listening(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def schema_is_current(database_url: str) -> bool:
    # Not alembic: it would stay imported, ~8 MB, for the life of `serve` (adapters/db/schema_version.py).
    from recorder_service.adapters.db import schema_version
    from recorder_service.adapters.db.engine import create_engine

    engine = create_engine(database_url)
    try:
        return await schema_version.schema_is_current(engine, database_url)
    finally:
        await engine.dispose()


async def dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.command == "migrate":
        from recorder_service.adapters.db.migrate import upgrade_async

        settings = configure(env)
        await upgrade_async(settings.database_url)
        log.info("database upgraded to head")
        return 0
    if args.command == "worker":
        from recorder_service.workers.main import run_worker

        settings = configure(env)
        init_telemetry(env)  # the worker's resources use the process's (global) telemetry
        return await run_worker(settings)
    if args.command == "demo":
        if importlib.util.find_spec("moto") is None:  # a development dependency, not in the image
            print(
                "recorder-service: the demo needs the development dependencies (moto): "
                "run `uv run recorder-service demo` in a checkout of the repository",
                file=sys.stderr,
            )
            return 1
        from recorder_service.tools.demo import play

        return await play(sys.stdout, keep_running=args.keep_running)
    if args.command == "simulate-daily":
        from recorder_service.tools.simulator import SimulatorConfig, run_simulator

        if (args.s3_endpoint_url is None) != (args.s3_bucket is None):
            print("recorder-service: --s3-endpoint-url and --s3-bucket go together", file=sys.stderr)
            return 2
        rate_limit = None
        if args.start_rate_limit:
            calls, _, seconds = args.start_rate_limit.partition("/")
            rate_limit = (int(calls), float(seconds))
        config = SimulatorConfig(
            api_key=env.get("RECORDER_DAILY_API_KEY") or None,
            s3_endpoint_url=args.s3_endpoint_url,
            s3_bucket=args.s3_bucket,
            start_rate_limit=rate_limit,
            hosting_delay_s=args.hosting_delay,
        )
        await run_simulator(args.host, args.port, config)
        return 0
    if args.command == "daily":
        from recorder_service.adapters.daily.client import DailyClient
        from recorder_service.errors import DailyError
        from recorder_service.tools.daily_probe import run_probe
        from recorder_service.tools.daily_webhooks import ensure_webhook, list_webhooks

        # These tools talk to Daily only and never serve playback: no playback secret needed.
        settings = configure({**env, "RECORDER_PLAYBACK_AUTH": "open"})
        ensuring = args.daily_command == "webhook" and args.webhook_command == "ensure"
        if ensuring and not settings.daily_webhook_secrets:
            print(
                "recorder-service: daily webhook ensure needs RECORDER_DAILY_WEBHOOK_SECRETS "
                "(its first secret becomes the webhook's hmac)",
                file=sys.stderr,
            )
            return 1
        http = DailyClient.build_http(
            settings.daily_api_url, settings.daily_api_key, settings.daily_timeout_seconds
        )
        try:
            async with http:
                if args.daily_command == "probe":
                    # No retries: a retried start would hide Daily's first answer.
                    report = await run_probe(DailyClient(http, max_attempts=1), args.room, out=sys.stdout)
                    if report.auth_failed:
                        print("recorder-service: Daily rejected the API key", file=sys.stderr)
                        return 1
                    if report.failed_stops:
                        print(
                            f"recorder-service: {len(report.failed_stops)} recording(s) may still run",
                            file=sys.stderr,
                        )
                        return 1
                    return 0
                daily = DailyClient(
                    http,
                    max_attempts=settings.daily_max_attempts,
                    retry_base_s=settings.daily_retry_base_seconds,
                )
                if ensuring:
                    result = await ensure_webhook(
                        daily,
                        args.url,
                        settings.daily_webhook_secrets[0],
                        relayed=settings.forward_daily_events,
                    )
                    print(result.describe())
                    return 0
                await list_webhooks(daily, out=sys.stdout)
                return 0
        except DailyError as exc:
            print(f"recorder-service: {exc}", file=sys.stderr)
            return 1
    print(f"recorder-service: unknown command {args.command}", file=sys.stderr)  # argparse prevents this
    return 2
