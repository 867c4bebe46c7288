"""A tracer for a process whose spans go nowhere (no OTLP endpoint, no other span processor).

Spans are still needed there: their trace ids go into the logs and, as `traceparent`, onto the
inbox and callback rows and the callbacks Reflector receives. But the SDK's recording span
(attributes bounded and copied, a start and end time, the processors called) is wasted when
nothing reads it: ~20 µs per span, a quarter of a webhook's acknowledgement CPU at 64 senders
(docs/performance.md). This tracer gives each span a fresh span id under its parent's trace
(or a new trace), the parent's sampling flag (sampled at the root, as the SDK's default
ParentBased(ALWAYS_ON) sampler decides), and records nothing: the trace context that leaves
the process is what the SDK's would have been.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    NonRecordingSpan,
    Span,
    SpanContext,
    TraceFlags,
    Tracer,
    TracerProvider,
    TraceState,
)

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _new_span_id() -> int:
    span_id = random.getrandbits(64)
    return span_id if span_id != INVALID_SPAN_ID else _new_span_id()


def _new_trace_id() -> int:
    trace_id = random.getrandbits(128)
    return trace_id if trace_id != INVALID_TRACE_ID else _new_trace_id()


class ContextOnlyTracer(Tracer):
    # The API's other parameters (kind, attributes, links, times, exception handling) describe
    # what a span records; this one records nothing, so it takes and ignores them.
    def start_span(self, name: str, context: Context | None = None, *_args: Any, **_kwargs: Any) -> Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            trace_id, flags, state = _new_trace_id(), _SAMPLED, TraceState()
        return NonRecordingSpan(
            SpanContext(trace_id, _new_span_id(), is_remote=False, trace_flags=flags, trace_state=state)
        )

    def start_as_current_span(  # type: ignore[override]  # the API's is an async-capable twin
        self, name: str, context: Context | None = None, *_args: Any, **_kwargs: Any
    ) -> _CurrentSpan:
        return _CurrentSpan(self.start_span(name, context))


class _CurrentSpan:
    """`trace.use_span` for a span that records nothing: the span is current inside the block.
    (use_span would also record an exception on it and end it: no-ops on a NonRecordingSpan;
    as a class, not a generator, it costs a third as much.)"""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *_exc: object) -> None:
        context_api.detach(self._token)  # type: ignore[arg-type]


class ContextOnlyTracerProvider(TracerProvider):
    def __init__(self) -> None:
        self._tracer = ContextOnlyTracer()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Tracer:
        return self._tracer
