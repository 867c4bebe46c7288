"""The service's metric instruments and the Telemetry bundle handed to every component.

Built from API providers only: the default (global) providers are no-ops until the CLI
installs SDK ones, and tests pass their own, so nothing here fights over global state."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Tracer, TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

SCOPE = "recorder_service"

# Seconds; Daily calls take tens to hundreds of milliseconds, timeouts are ~10 s.
_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds a start waits for a call from Daily's start budget (up to its wait, ~20 s).
_BUDGET_WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
_WEBHOOK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Event types come from signed bodies only; still, keep label values short and tame.
_EVENT_TYPE = re.compile(r"[a-z0-9._-]{1,48}")


def event_type_label(event_type: str | None) -> str:
    if event_type is None:
        return "unknown"
    return event_type if _EVENT_TYPE.fullmatch(event_type) else "other"


@dataclass
class PendingCallbacks:
    """Last known outbox backlog. Gauge callbacks are synchronous and must not touch the
    database, so an async task refreshes this and the gauges read it."""

    count: int | None = None
    oldest: datetime | None = None

    def update(self, count: int, oldest: datetime | None) -> None:
        self.count = count
        self.oldest = oldest if oldest is None or oldest.tzinfo else oldest.replace(tzinfo=UTC)

    def forget(self) -> None:
        # Unknown (database unreachable): report nothing rather than a stale number.
        self.count = None
        self.oldest = None

    def oldest_age_s(self) -> float:
        if self.oldest is None:
            return 0.0
        return max(0.0, time.time() - self.oldest.timestamp())


class Instruments:
    def __init__(self, meter: Meter) -> None:
        self.pending = PendingCallbacks()
        # The same kind of cached backlog, for the deletion jobs (count = objects, not jobs).
        self.pending_deletions = PendingCallbacks()
        self._starts = meter.create_counter(
            "recorder.starts", description="Join-time start requests by recording type and outcome"
        )
        self._webhooks = meter.create_counter(
            "recorder.webhooks", description="Daily webhook requests by event type and outcome"
        )
        self._daily_requests = meter.create_counter(
            "recorder.daily.requests", description="HTTP requests to Daily's API by operation and status"
        )
        self._daily_duration = meter.create_histogram(
            "recorder.daily.request.duration",
            unit="s",
            description="Latency of HTTP requests to Daily's API",
            explicit_bucket_boundaries_advisory=list(_LATENCY_BUCKETS_S),
        )
        self._webhook_duration = meter.create_histogram(
            "recorder.webhook.request.duration",
            unit="s",
            description="Time to answer Daily's webhook requests, by status code",
            explicit_bucket_boundaries_advisory=list(_WEBHOOK_BUCKETS_S),
        )
        self._playback_duration = meter.create_histogram(
            "recorder.playback.request.duration",
            unit="s",
            description="Time to answer playback redirects (GET/HEAD cloud-recording), by status code",
            explicit_bucket_boundaries_advisory=list(_WEBHOOK_BUCKETS_S),
        )
        self._budget_grants = meter.create_counter(
            "recorder.daily.start_budget.grants",
            description="Start calls to Daily granted by the deployment's start budget, by kind (first, retry)",
        )
        self._budget_refusals = meter.create_counter(
            "recorder.daily.start_budget.refusals",
            description="Starts refused (429) because no start call could be had within their wait",
        )
        self._budget_waiting = meter.create_up_down_counter(
            "recorder.daily.start_budget.waiting",
            description="Starts of this replica waiting for a call from the start budget",
        )
        self._budget_wait = meter.create_histogram(
            "recorder.daily.start_budget.wait",
            unit="s",
            description="Time a start waited for a call from the start budget (granted calls)",
            explicit_bucket_boundaries_advisory=list(_BUDGET_WAIT_BUCKETS_S),
        )
        self._callbacks = meter.create_counter(
            "recorder.callback.attempts",
            description="Callback delivery attempts to Reflector by outcome (delivered, retried, dead)",
        )
        meter.create_observable_gauge(
            "recorder.callbacks.pending",
            callbacks=[self._observe_pending],
            description="Callbacks waiting for delivery (the whole outbox, not this replica's share)",
        )
        meter.create_observable_gauge(
            "recorder.callbacks.oldest_pending_age",
            unit="s",
            callbacks=[self._observe_oldest_age],
            description="Age of the oldest callback waiting for delivery",
        )

        self._deletions = meter.create_counter(
            "recorder.deletions",
            description="Deletion jobs by reason and outcome (requested, completed, retried)",
        )
        meter.create_observable_gauge(
            "recorder.deletions.pending_objects",
            callbacks=[self._observe_pending_deletions],
            description="S3 objects waiting to be deleted (the whole backlog, not this replica's share)",
        )
        meter.create_observable_gauge(
            "recorder.deletions.oldest_pending_age",
            unit="s",
            callbacks=[self._observe_oldest_deletion_age],
            description="Age of the oldest deletion job whose objects are not all gone yet",
        )

    def count_deletion(self, reason: str, outcome: str) -> None:
        self._deletions.add(1, {"reason": reason, "outcome": outcome})

    def _observe_pending_deletions(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self.pending_deletions.count is None:
            return []
        return [Observation(self.pending_deletions.count)]

    def _observe_oldest_deletion_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self.pending_deletions.count is None:
            return []
        return [Observation(self.pending_deletions.oldest_age_s())]

    def count_start(self, rec_type: str, outcome: str) -> None:
        self._starts.add(1, {"type": rec_type, "outcome": outcome})

    def count_webhook(self, event_type: str | None, outcome: str) -> None:
        self._webhooks.add(1, {"event_type": event_type_label(event_type), "outcome": outcome})

    def record_webhook_request(self, status_code: int, duration_s: float) -> None:
        self._webhook_duration.record(duration_s, {"http_status_code": status_code})

    def record_playback_request(self, status_code: int, duration_s: float) -> None:
        self._playback_duration.record(duration_s, {"http_status_code": status_code})

    def record_daily_request(self, operation: str, status: str, duration_s: float) -> None:
        attributes = {"operation": operation, "status": status}
        self._daily_requests.add(1, attributes)
        self._daily_duration.record(duration_s, attributes)

    def budget_waiting(self, delta: int) -> None:
        self._budget_waiting.add(delta)

    def record_budget_grant(self, kind: str, waited_s: float) -> None:
        self._budget_grants.add(1, {"kind": kind})
        self._budget_wait.record(waited_s, {"kind": kind})

    def count_budget_refusal(self, kind: str) -> None:
        self._budget_refusals.add(1, {"kind": kind})

    def count_callback(self, event_type: str, outcome: str) -> None:
        self._callbacks.add(1, {"event_type": event_type_label(event_type), "outcome": outcome})

    def _observe_pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self.pending.count is None:
            return []
        return [Observation(self.pending.count)]

    def _observe_oldest_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self.pending.count is None:
            return []
        return [Observation(self.pending.oldest_age_s())]


class Telemetry:
    """Tracer, instruments and the Prometheus registry `GET /metrics` serves, built once
    per process (or per test) and passed explicitly."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        *,
        registry: CollectorRegistry | None = None,
        exporters: tuple[str, ...] = (),
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer: Tracer = tracer_provider.get_tracer(SCOPE)
        self.instruments = Instruments(meter_provider.get_meter(SCOPE))
        self.registry = registry if registry is not None else REGISTRY
        # What leaves the process besides /metrics, e.g. ("otlp-traces",); for logs and tests.
        self.exporters = exporters

    @classmethod
    def from_global(cls) -> Telemetry:
        """The process's telemetry: the one the CLI installed, else the global API providers
        (no-ops unless something else installed SDK ones)."""
        if _installed:
            return _installed[0]
        return cls(trace.get_tracer_provider(), metrics.get_meter_provider())


# The telemetry installed as the process's global providers (at most one); kept so that
# instruments, whose observable gauges a meter registers once per name, are built once.
_installed: list[Telemetry] = []


def install_global(telemetry: Telemetry) -> None:
    """Makes `telemetry` the process-wide default. Once per process (the CLI's start)."""
    if _installed:
        raise RuntimeError("process telemetry is already installed")
    trace.set_tracer_provider(telemetry.tracer_provider)
    metrics.set_meter_provider(telemetry.meter_provider)
    _installed.append(telemetry)


@functools.cache
def disabled_telemetry() -> Telemetry:
    """No-op telemetry, the default of components built outside the composition root."""
    return Telemetry(
        trace.NoOpTracerProvider(),
        metrics.NoOpMeterProvider(),
        registry=CollectorRegistry(auto_describe=True),
    )
