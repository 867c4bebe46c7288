"""SDK set-up from the standard OTEL_* variables.

Traces leave the process only when an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`); otherwise spans carry
only their trace context (trace ids in logs, the traceparent sent to Reflector) and record
nothing (telemetry/context_only.py), unless OTEL_TRACES_SAMPLER asks for the SDK's sampling.
Metrics are always readable at `GET /metrics`; they are also pushed over OTLP when an OTLP
metrics endpoint is configured (a `worker` serves no HTTP)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from prometheus_client import REGISTRY, CollectorRegistry

from recorder_service.telemetry.context_only import ContextOnlyTracerProvider
from recorder_service.telemetry.instruments import Telemetry, install_global

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "recorder-service"


def _enabled(env: Mapping[str, str], signal: str) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower()
    if exporter in ("", "none"):
        return False
    endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(endpoint)


def otlp_traces_configured(env: Mapping[str, str]) -> bool:
    return _enabled(env, "traces")


def otlp_metrics_configured(env: Mapping[str, str]) -> bool:
    return _enabled(env, "metrics")


def build_telemetry(
    env: Mapping[str, str],
    *,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    registry: CollectorRegistry | None = None,
) -> Telemetry:
    """SDK providers per `env`. `span_exporters` (exported synchronously) and `metric_readers`
    are extra ones, e.g. in-memory ones in tests; `registry` is what /metrics serves
    (default: prometheus_client's global registry)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME})
    exporters: list[str] = []
    processors: list[SpanProcessor] = [SimpleSpanProcessor(e) for e in span_exporters]
    if otlp_traces_configured(env):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads the endpoint, headers and timeout from the OTEL_* variables itself.
        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        exporters.append("otlp-traces")
    tracer_provider: trace.TracerProvider
    if processors or env.get("OTEL_TRACES_SAMPLER"):
        sdk_provider = TracerProvider(resource=resource)
        for processor in processors:
            sdk_provider.add_span_processor(processor)
        tracer_provider = sdk_provider
    else:
        # No span leaves the process: spans carry trace context only (context_only.py).
        tracer_provider = ContextOnlyTracerProvider()

    prometheus_registry = registry if registry is not None else REGISTRY
    readers: list[MetricReader] = [
        PrometheusMetricReader(registry=prometheus_registry),
        *metric_readers,
    ]
    if otlp_metrics_configured(env):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        exporters.append("otlp-metrics")
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, exemplar_filter=_exemplar_filter(env, readers)
    )
    return Telemetry(
        tracer_provider, meter_provider, registry=prometheus_registry, exporters=tuple(exporters)
    )


def _exemplar_filter(env: Mapping[str, str], readers: Sequence[MetricReader]) -> ExemplarFilter | None:
    """Exemplars (trace ids on metric points) only when a pushed exporter can carry them:
    `/metrics` (Prometheus text) drops them, yet offering each measurement to the reservoir costs
    CPU on every webhook (docs/performance.md). With OTEL_METRICS_EXEMPLAR_FILTER set, or another
    reader, the SDK decides (None)."""
    if env.get("OTEL_METRICS_EXEMPLAR_FILTER") or len(readers) > 1:
        return None
    return AlwaysOffExemplarFilter()


def install_telemetry(env: Mapping[str, str]) -> Telemetry:
    """Builds the process's telemetry from `env` and makes it the global default."""
    telemetry = build_telemetry(env)
    install_global(telemetry)
    if telemetry.exporters:
        log.info("telemetry exporting: %s", ", ".join(telemetry.exporters))
    return telemetry
