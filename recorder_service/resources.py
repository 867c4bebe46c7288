"""open_resources(): every client and pool, built once per process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from recorder_service.adapters.callbacks import callback_session
from recorder_service.adapters.coordination import LocalCoordinator, RedisCoordinator
from recorder_service.adapters.daily.client import DailyClient
from recorder_service.adapters.db.engine import create_engine, session_factory, warm_pool
from recorder_service.adapters.db.inbox_writer import InboxWriter
from recorder_service.adapters.db.types import utcnow
from recorder_service.adapters.db.unit_of_work import Database
from recorder_service.adapters.start_budget import (
    BudgetPolicy,
    LocalBudgetBackend,
    RedisBudgetBackend,
    StartBudget,
)
from recorder_service.adapters.storage import RecordingStorage
from recorder_service.core.daily_signature import DailyWebhookVerifier
from recorder_service.core.playback_tokens import PlaybackTokens
from recorder_service.services.deletions import DeletionDeps
from recorder_service.services.ingest import IngestDeps, apply_events, pending_event_ids
from recorder_service.services.starts import StartDeps, StartPolicy
from recorder_service.settings import Settings
from recorder_service.telemetry import Telemetry
from recorder_service.workers.apply_queue import ApplyQueue

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """The clients and pools of one process, plus the dependencies of its two hot use cases
    (a join-time start, a webhook), built once here so each is visible in one place."""

    settings: Settings
    db: Database
    coordinator: RedisCoordinator | LocalCoordinator
    redis: aioredis.Redis | None
    daily: DailyClient
    callback_http: aiohttp.ClientSession
    storage: RecordingStorage
    telemetry: Telemetry
    starts: StartDeps
    ingest: IngestDeps
    # Set when a callback is enqueued, so the dispatcher delivers it without waiting a poll tick.
    outbox_wakeup: asyncio.Event
    # Removal of deleted recordings' objects; `deletion_wakeup` is set when a job is queued.
    deletions: DeletionDeps
    deletion_wakeup: asyncio.Event
    # Mints (link endpoint) and checks (playback redirect) playback tokens; None without a secret.
    playback_tokens: PlaybackTokens | None = None
    now: Callable[[], datetime] = field(default=utcnow)

    @property
    def playback_checker(self) -> PlaybackTokens | None:
        """What the playback redirect checks tokens with; None: open playback."""
        return self.playback_tokens if self.settings.playback_auth == "token" else None


def start_policy(s: Settings) -> StartPolicy:
    # The lock must outlive the holder's worst case: its wait for a call from the start budget,
    # the not-hosting budget, and Daily's bounded retries (timeout per attempt, with backoff).
    worst_case_s = (
        s.daily_start_budget_wait_seconds
        + s.start_not_hosting_budget_seconds
        + s.daily_timeout_seconds * s.daily_max_attempts
        + 10
    )
    return StartPolicy(
        cloud_start=s.cloud_start,
        not_hosting_budget_s=s.start_not_hosting_budget_seconds,
        not_hosting_delay_s=s.start_not_hosting_delay_seconds,
        lock_ttl_s=worst_case_s + 30,
        lock_wait_s=worst_case_s,
    )


def budget_policy(s: Settings) -> BudgetPolicy:
    return BudgetPolicy(
        calls=s.daily_start_budget_calls,
        window_s=s.daily_start_budget_window_seconds,
        wait_s=s.daily_start_budget_wait_seconds,
        # About one call per second per meeting and type: the pace of the not-hosting retries.
        meeting_interval_s=s.start_not_hosting_delay_seconds,
        # Longer than any one request to Daily (connect, then read, each bounded by the timeout).
        hold_s=2 * s.daily_timeout_seconds + 5,
    )


def freeze_startup_heap() -> None:
    """Moves everything built at start-up (modules, clients, pools, compiled statements) out of
    the garbage collector's reach. Those objects live as long as the process, yet every full
    collection would walk them again, pausing the event loop (figures in docs/performance.md).
    Called once per process, by `serve` and `worker`, never in tests."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, *, telemetry: Telemetry | None = None
) -> AsyncIterator[Resources]:
    telemetry = telemetry or Telemetry.from_global()
    engine = create_engine(settings.database_url)
    redis_client: aioredis.Redis | None = None
    coordinator: RedisCoordinator | LocalCoordinator
    if settings.redis_url:
        redis_client = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            health_check_interval=15,
            # Two quick retries replace a pooled connection that a Redis restart broke. redis-py's
            # default backs off for seconds: a start during an outage would hang, not answer 503.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=2),
        )
        coordinator = RedisCoordinator(redis_client, settings.redis_prefix)
        budget_backend: RedisBudgetBackend | LocalBudgetBackend = RedisBudgetBackend(
            redis_client, settings.redis_prefix
        )
    else:
        log.warning("RECORDER_REDIS_URL is unset: in-process locks, run a single replica only")
        coordinator = LocalCoordinator()
        budget_backend = LocalBudgetBackend()
    daily_http = DailyClient.build_http(
        settings.daily_api_url, settings.daily_api_key, settings.daily_timeout_seconds
    )
    callback_http = callback_session(settings.callback_timeout_seconds)
    verifier = (
        DailyWebhookVerifier(settings.daily_webhook_secrets) if settings.daily_webhook_secrets else None
    )
    outbox_wakeup = asyncio.Event()
    deletion_wakeup = asyncio.Event()
    db = Database(engine, session_factory(engine))
    daily = DailyClient(
        daily_http,
        max_attempts=settings.daily_max_attempts,
        retry_base_s=settings.daily_retry_base_seconds,
        telemetry=telemetry,
    )
    inbox_writer = InboxWriter(engine)
    # Webhook ingest: concurrent stores share one INSERT; applies run beside the server.
    apply_queue = ApplyQueue()
    ingest = IngestDeps(
        db=db,
        verifier=verifier,
        bucket=settings.s3_bucket,
        now=utcnow,
        wake_outbox=outbox_wakeup.set,
        writer=inbox_writer,
        apply_queue=apply_queue,
        telemetry=telemetry,
        wake_deletions=deletion_wakeup.set,
        relayed_event_types=frozenset(settings.forward_daily_events),
    )
    starts = StartDeps(
        db=db,
        coordinator=coordinator,
        daily=daily,
        policy=start_policy(settings),
        now=utcnow,
        telemetry=telemetry,
        budget=StartBudget(budget_backend, budget_policy(settings), telemetry),
    )
    try:
        async with RecordingStorage.open(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            telemetry=telemetry,
        ) as storage:
            deletions = DeletionDeps(
                db=db,
                storage=storage,
                daily=daily,
                now=utcnow,
                retry_delays_s=settings.deletion_retry_seconds,
                lease=timedelta(seconds=settings.deletion_lease_seconds),
                batch_size=settings.deletion_batch_size,
                wake_outbox=outbox_wakeup.set,
                telemetry=telemetry,
            )
            res = Resources(
                settings=settings,
                db=db,
                coordinator=coordinator,
                redis=redis_client,
                daily=daily,
                callback_http=callback_http,
                storage=storage,
                telemetry=telemetry,
                starts=starts,
                ingest=ingest,
                outbox_wakeup=outbox_wakeup,
                deletions=deletions,
                deletion_wakeup=deletion_wakeup,
                playback_tokens=PlaybackTokens(settings.playback_secret)
                if settings.playback_secret
                else None,
            )
            await warm_pool(engine)
            apply_queue.start(
                lambda event_ids: apply_events(ingest, event_ids),
                refill=lambda limit: pending_event_ids(ingest, limit),
            )
            try:
                yield res
            finally:
                await apply_queue.close()
                await inbox_writer.close()
    finally:
        await daily_http.aclose()
        await callback_http.close()
        if redis_client is not None:
            await redis_client.aclose()
        await engine.dispose()
