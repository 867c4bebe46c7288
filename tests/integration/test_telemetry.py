"""Traces, metrics and trace propagation, with in-memory exporters injected into the real app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from recorder_service.app import create_app
from recorder_service.settings import load_settings
from recorder_service.telemetry import Telemetry, annotate_current_span, current_traceparent, parent_context
from recorder_service.telemetry.context_only import ContextOnlyTracerProvider
from recorder_service.telemetry.setup import (
    build_telemetry,
    otlp_metrics_configured,
    otlp_traces_configured,
)
from recorder_service.tools.asgi_server import serve_in_task
from tests.integration.test_callbacks import callback_env, raw_tracks_ready
from tests.integration.test_start import ROOM as START_ROOM
from tests.integration.test_start import register as register_start_meeting
from tests.integration.test_start import start
from tests.integration.test_webhooks import register as register_webhook_meeting
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.service import AUTH, RunningService, playback, service_env
from tests.plugins.simulator import DailySim
from tests.support.webhooks import envelope, post_webhook

INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class Traced:
    svc: RunningService
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    async def wait_span(
        self, predicate: Callable[[ReadableSpan], bool], timeout_s: float = 5
    ) -> ReadableSpan:
        # The server span ends after the response is sent: poll briefly.
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            for span in self.spans.get_finished_spans():
                if predicate(span):
                    return span
            if asyncio.get_running_loop().time() > deadline:
                names = [s.name for s in self.spans.get_finished_spans()]
                raise AssertionError(f"no matching span among {names}")
            await asyncio.sleep(0.02)

    def in_trace(self, trace_id: int) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.context and s.context.trace_id == trace_id]

    def metric_names(self) -> set[str]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return {
            metric.name
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


@contextlib.asynccontextmanager
async def traced_service(env: dict[str, str]) -> AsyncIterator[Traced]:
    """Like tests.plugins.service.run_service, with in-memory exporters and a private registry
    injected through create_app, so no global OpenTelemetry state is touched."""
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    telemetry = build_telemetry(
        {}, span_exporters=[spans], metric_readers=[reader], registry=CollectorRegistry()
    )
    settings = load_settings(env)
    app = create_app(settings, telemetry=telemetry)
    try:
        async with serve_in_task(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Traced(RunningService(url, client, settings, app.state), telemetry, spans, reader)
    finally:
        cast(TracerProvider, telemetry.tracer_provider).shutdown()
        cast(MeterProvider, telemetry.meter_provider).shutdown()


@contextlib.asynccontextmanager
async def traced_start_room(db_url: str, daily_sim: DailySim, **env: str) -> AsyncIterator[Traced]:
    """A traced service with the start tests' meeting registered and someone in its Daily room."""
    async with traced_service(service_env(db_url, daily_sim.base_url, **env)) as t:
        await register_start_meeting(t.svc)
        await daily_sim.join(START_ROOM)
        yield t


def server_span(method: str, path_part: str) -> Callable[[ReadableSpan], bool]:
    def match(span: ReadableSpan) -> bool:
        return span.kind == SpanKind.SERVER and span.name.startswith(method) and span.name.endswith(path_part)

    return match


def named(name: str) -> Callable[[ReadableSpan], bool]:
    return lambda span: span.name == name


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None
    [parent] = [s for s in spans if s.context and s.context.span_id == span.parent.span_id]
    return parent


async def test_every_request_gets_a_server_span(postgres_db_url: str) -> None:
    async with traced_service(service_env(postgres_db_url)) as t:
        await register_webhook_meeting(t.svc, "m-1")
        span = await t.wait_span(server_span("PUT", "/v1/meetings/{meeting_id}"))
        attributes = span.attributes or {}
        assert attributes.get("http.status_code") == 201
        assert attributes["http.route"] == "/v1/meetings/{meeting_id}"
        assert span.name == "PUT /v1/meetings/{meeting_id}"
        r = await t.svc.client.get("/healthz")
        assert r.status_code == 200
        await asyncio.sleep(0.1)
        assert not [s for s in t.spans.get_finished_spans() if "/healthz" in s.name]  # probes untraced


async def test_a_start_traces_lock_claim_and_each_daily_attempt(
    postgres_db_url: str, daily_sim: DailySim
) -> None:
    async with traced_start_room(postgres_db_url, daily_sim) as t:
        r = await start(t.svc)
        assert r.json()["status"] == "started", r.text
        server = await t.wait_span(server_span("POST", "/recordings/start"))
        assert server.context is not None
        spans = t.in_trace(server.context.trace_id)
        names = {s.name for s in spans}
        assert {"recording.start", "start.lock_wait", "start.claim", "start.daily_attempt"} <= names
        [daily] = [s for s in spans if s.name == "daily.start_recording"]
        assert daily.kind == SpanKind.CLIENT
        assert (daily.attributes or {})["daily.attempts"] == 1
        assert (daily.attributes or {})["http.response.status_code"] == 200
        assert (daily.attributes or {})["http.request.method"] == "POST"
        assert parent_of(daily, spans).name == "start.daily_attempt"
        assert parent_of(parent_of(daily, spans), spans).name == "recording.start"
        [outer] = [s for s in spans if s.name == "recording.start"]
        assert (outer.attributes or {})["recorder.outcome"] == "started"


async def test_a_start_that_waits_for_the_host_traces_every_attempt(
    postgres_db_url: str, daily_sim: DailySim
) -> None:
    async with traced_service(service_env(postgres_db_url, daily_sim.base_url)) as t:
        await register_start_meeting(t.svc)
        r = await start(t.svc)  # nobody joined: Daily says "not hosting" until the budget ends
        assert r.status_code == 409, r.text
        server = await t.wait_span(server_span("POST", "/recordings/start"))
        assert server.context is not None
        attempts = [s for s in t.in_trace(server.context.trace_id) if s.name == "start.daily_attempt"]
        assert len(attempts) >= 2
        numbers = sorted(cast(int, (s.attributes or {})["recorder.attempt"]) for s in attempts)
        assert numbers == list(range(1, len(attempts) + 1))


async def test_a_webhook_traces_store_and_apply_under_its_verified_server_span(postgres_db_url: str) -> None:
    async with traced_service(service_env(postgres_db_url, RECORDER_S3_BUCKET="b")) as t:
        await register_webhook_meeting(t.svc, "m-1")
        await raw_tracks_ready(t.svc.client)
        server = await t.wait_span(server_span("POST", "/v1/daily/webhook"))
        assert server.context is not None
        assert (server.attributes or {})["webhook.signature_valid"] is True
        spans = t.in_trace(server.context.trace_id)
        by_name = {s.name: s for s in spans}
        assert {"webhook.store", "webhook.apply"} <= set(by_name)
        assert parent_of(by_name["webhook.store"], spans) is server
        assert (by_name["webhook.apply"].attributes or {})["webhook.outcome"] == "applied"
        assert (by_name["webhook.store"].attributes or {})["daily.event_type"] == (
            "recording.ready-to-download"
        )


async def test_raw_tracks_callback_continues_the_webhook_trace(
    postgres_db_url: str, callback_receiver: CallbackReceiver
) -> None:
    async with traced_service(callback_env(postgres_db_url, callback_receiver)) as t:
        await register_webhook_meeting(t.svc, "m-1")
        await raw_tracks_ready(t.svc.client)
        [delivery] = await callback_receiver.wait_for(1, timeout_s=5)
        server = await t.wait_span(server_span("POST", "/v1/daily/webhook"))
        assert server.context is not None
        assert delivery.traceparent is not None
        version, trace_id, span_id, _flags = delivery.traceparent.split("-")
        assert version == "00"
        assert int(trace_id, 16) == server.context.trace_id
        deliver = await t.wait_span(named("callback.deliver"))
        assert deliver.kind == SpanKind.CLIENT
        assert deliver.context is not None
        assert int(span_id, 16) == deliver.context.span_id  # the header names the attempt's span
        assert deliver.context.trace_id == server.context.trace_id
        await asyncio.sleep(0.1)
        assert "recorder.callback.attempts" in t.metric_names()


async def test_a_webhook_continues_the_senders_trace(postgres_db_url: str) -> None:
    async with traced_service(service_env(postgres_db_url)) as t:
        r = await post_webhook(
            t.svc.client,
            envelope("participant.joined", {"room": "r"}),
            headers={"traceparent": f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-01"},
        )
        assert r.status_code == 200, r.text
        server = await t.wait_span(server_span("POST", "/v1/daily/webhook"))
        assert server.context is not None
        assert format(server.context.trace_id, "032x") == INCOMING_TRACE_ID


async def test_metrics_are_served_in_prometheus_text_format(
    postgres_db_url: str, daily_sim: DailySim
) -> None:
    async with traced_start_room(postgres_db_url, daily_sim, RECORDER_S3_BUCKET="b") as t:
        assert (await start(t.svc)).status_code == 200
        await register_webhook_meeting(t.svc, "m-1")
        await raw_tracks_ready(t.svc.client)  # no callback URL: the callback stays pending
        bad = await post_webhook(t.svc.client, envelope("recording.started", {}), secret="c2VjcmV0")
        assert bad.status_code == 401
        r = await t.svc.client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
        for name in (
            "recorder_starts_total",
            "recorder_webhooks_total",
            "recorder_daily_requests_total",
            "recorder_daily_request_duration_seconds_bucket",
            "recorder_callbacks_pending",
            "recorder_callbacks_oldest_pending_age_seconds",
            "http_server_duration_milliseconds",
        ):
            assert name in text, name
        assert _sample(text, "recorder_starts_total", 'outcome="started"') == 1
        assert _sample(text, "recorder_webhooks_total", 'outcome="invalid_signature"') == 1
        assert _sample(text, "recorder_webhooks_total", 'outcome="applied"') == 1
        assert _sample(text, "recorder_daily_requests_total", 'operation="start_recording"') == 1
        assert _sample(text, "recorder_callbacks_pending", "") == 1
        # Requests by route template and status, never by raw path (one series per meeting).
        assert _sample(
            text,
            "http_server_duration_milliseconds_count",
            'http_target="/v1/meetings/{meeting_id}/recordings/start"',
        )
        assert "m-1" not in text
        schema = (await t.svc.client.get("/schema/openapi.json")).json()
        assert "/metrics" not in schema["paths"]


def _sample(text: str, name: str, label: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} sample with {label}")


def test_no_exporter_is_configured_without_otel_variables() -> None:
    telemetry = build_telemetry({}, registry=CollectorRegistry())
    try:
        assert telemetry.exporters == ()
        # Nothing would read a recorded span: spans carry their trace context only.
        assert isinstance(telemetry.tracer_provider, ContextOnlyTracerProvider)
    finally:
        cast(MeterProvider, telemetry.meter_provider).shutdown()
    assert not otlp_traces_configured({})
    assert not otlp_metrics_configured({})
    sampled = build_telemetry({"OTEL_TRACES_SAMPLER": "always_off"}, registry=CollectorRegistry())
    try:  # a sampler asked for: the SDK's spans, without a processor
        processors: Any = cast(TracerProvider, sampled.tracer_provider)._active_span_processor
        assert processors._span_processors == ()
    finally:
        cast(TracerProvider, sampled.tracer_provider).shutdown()
        cast(MeterProvider, sampled.meter_provider).shutdown()


def _traceparent_parts(traceparent: str | None) -> tuple[str, str, str, str]:
    assert traceparent is not None
    version, trace_id, span_id, flags = traceparent.split("-")
    return version, trace_id, span_id, flags


def test_context_only_spans_give_the_trace_context_the_sdk_would() -> None:
    """A root span starts a sampled trace; a child keeps the trace with a span id of its own; a
    stored or received parent is continued with its own sampling flag; nothing is recorded."""
    tracer = build_telemetry({}, registry=CollectorRegistry()).tracer
    with tracer.start_as_current_span("root", attributes={"a": 1}) as root:
        assert not root.is_recording()
        annotate_current_span("b", 2)  # accepted, dropped
        version, trace_id, root_id, flags = _traceparent_parts(current_traceparent())
        assert (version, flags) == ("00", "01") and int(trace_id, 16) and int(root_id, 16)
        with tracer.start_as_current_span("child"):
            _v, child_trace, child_id, child_flags = _traceparent_parts(current_traceparent())
        assert (child_trace, child_flags) == (trace_id, "01") and child_id != root_id
    assert current_traceparent() is None  # ended: no span is active any more
    with tracer.start_as_current_span("second root"):
        assert _traceparent_parts(current_traceparent())[1] != trace_id
    for flags in ("00", "01"):
        parent = f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-{flags}"
        with tracer.start_as_current_span("continued", context=parent_context(parent)):
            _v, continued, span_id, got = _traceparent_parts(current_traceparent())
        assert (continued, got) == (INCOMING_TRACE_ID, flags) and span_id != "00f067aa0ba902b7"


def test_a_context_only_span_stops_being_current_when_its_block_raises() -> None:
    tracer = build_telemetry({}, registry=CollectorRegistry()).tracer
    inside: list[str | None] = []

    def fail() -> None:
        with tracer.start_as_current_span("failing"):
            inside.append(current_traceparent())
            raise ValueError("boom")

    with tracer.start_as_current_span("root"):
        outer = current_traceparent()
        with pytest.raises(ValueError, match="boom"):
            fail()
        assert inside and inside[0] != outer
        assert current_traceparent() == outer
    assert current_traceparent() is None


async def test_without_an_exporter_a_callback_continues_the_senders_trace(
    postgres_db_url: str, callback_receiver: CallbackReceiver
) -> None:
    """As deployed without OTLP (context-only spans): the webhook's incoming trace reaches
    Reflector's callback, under a span id of the service's own."""
    telemetry = build_telemetry({}, registry=CollectorRegistry())
    assert isinstance(telemetry.tracer_provider, ContextOnlyTracerProvider)
    settings = load_settings(callback_env(postgres_db_url, callback_receiver))
    app = create_app(settings, telemetry=telemetry)
    try:
        async with serve_in_task(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            svc = RunningService(url, client, settings, app.state)
            await register_webhook_meeting(svc, "m-1")
            incoming = {"traceparent": f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-01"}
            await raw_tracks_ready(svc.client, headers=incoming)
            [delivery] = await callback_receiver.wait_for(1, timeout_s=5)
    finally:
        cast(MeterProvider, telemetry.meter_provider).shutdown()
    _v, trace_id, span_id, flags = _traceparent_parts(delivery.traceparent)
    assert (trace_id, flags) == (INCOMING_TRACE_ID, "01") and span_id != "00f067aa0ba902b7"


def test_otlp_is_used_only_when_an_endpoint_is_configured() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert otlp_traces_configured(endpoint)
    assert otlp_metrics_configured(endpoint)
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}
    assert otlp_traces_configured(traces_only)
    assert not otlp_metrics_configured(traces_only)
    assert not otlp_traces_configured(endpoint | {"OTEL_TRACES_EXPORTER": "none"})
    assert not otlp_traces_configured(endpoint | {"OTEL_SDK_DISABLED": "true"})


def test_the_default_telemetry_is_the_global_no_op_one() -> None:
    telemetry = Telemetry.from_global()
    assert telemetry.exporters == ()
    with telemetry.tracer.start_as_current_span("x") as span:
        assert not span.is_recording()


async def test_the_webhook_route_has_one_server_span_with_its_status(postgres_db_url: str) -> None:
    """The webhook route is traced by its own middleware (the generic one skips it): one SERVER
    span per request, named by route, with the status Litestar answered, errors included."""
    async with traced_service(service_env(postgres_db_url)) as t:
        ok = await post_webhook(t.svc.client, envelope("participant.joined", {"room": "r"}))
        bad = await post_webhook(
            t.svc.client, envelope("participant.joined", {"room": "r"}), secret="c2VjcmV0"
        )
        assert (ok.status_code, bad.status_code) == (200, 401)
        await t.wait_span(lambda s: server_span("POST", "/v1/daily/webhook")(s) and _status(s) == 401)
        servers = [s for s in t.spans.get_finished_spans() if server_span("POST", "/v1/daily/webhook")(s)]
        assert sorted(_status(s) for s in servers) == [200, 401]
        valid = [(s.attributes or {}).get("webhook.signature_valid") for s in sorted(servers, key=_status)]
        assert valid == [True, False]  # 200, 401
        assert all(s.name == "POST /v1/daily/webhook" for s in servers)
        text = (await t.svc.client.get("/metrics")).text
        assert _sample(text, "recorder_webhook_request_duration_seconds_count", 'http_status_code="401"') == 1
        assert _sample(text, "recorder_webhook_request_duration_seconds_count", 'http_status_code="200"') == 1
        assert 'http_target="/v1/daily/webhook"' not in text  # not counted twice


def _status(span: ReadableSpan) -> int:
    return cast(int, (span.attributes or {}).get("http.response.status_code", 0))


async def test_the_playback_redirect_has_one_server_span_with_its_status(postgres_db_url: str) -> None:
    """The playback redirect traces itself like the webhook route: one SERVER span named by
    route, its status, `recorder.playback.request.duration`; `.../link` keeps the generic span."""
    async with traced_service(service_env(postgres_db_url)) as t:
        path = "/v1/meetings/m-x/cloud-recording"
        missing = await t.svc.client.get(path)
        unknown = await t.svc.client.get(path, params=playback("m-x"))
        assert (missing.status_code, unknown.status_code) == (401, 404)
        link = await t.svc.client.get(f"{path}/link", headers=AUTH)
        assert link.status_code == 404
        template = "/v1/meetings/{meeting_id}/cloud-recording"
        await t.wait_span(lambda s: server_span("GET", f"{template}/link")(s))
        servers = [
            s
            for s in t.spans.get_finished_spans()
            if s.kind == SpanKind.SERVER and "cloud-recording" in s.name
        ]
        redirects = sorted((s for s in servers if s.name == f"GET {template}"), key=_status)
        assert [_status(s) for s in redirects] == [401, 404]
        assert [s.name for s in servers if s.name.endswith("/link")] == [f"GET {template}/link"]
        text = (await t.svc.client.get("/metrics")).text
        assert (
            _sample(text, "recorder_playback_request_duration_seconds_count", 'http_status_code="401"') == 1
        )
        assert (
            _sample(text, "recorder_playback_request_duration_seconds_count", 'http_status_code="404"') == 1
        )
        assert 'http_target="/v1/meetings/m-x/cloud-recording"' not in text  # not counted twice
