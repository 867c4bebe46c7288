"""W3C trace context as stored on inbox and callback rows (their `traceparent` columns)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The columns hold W3C traceparent strings whatever OTEL_PROPAGATORS says, because that is
# the header Reflector receives with each callback.
_W3C = TraceContextTextMapPropagator()


def annotate_current_span(key: str, value: str | bool | int | float) -> None:
    """Sets an attribute on the active span (a no-op without one)."""
    trace.get_current_span().set_attribute(key, value)


def current_traceparent() -> str | None:
    """The active span's W3C traceparent, or None when no span is active."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    """A context whose parent is the stored traceparent (None: no usable parent)."""
    if not traceparent:
        return None
    ctx = _W3C.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def parent_context(traceparent: str | None) -> Context | None:
    """Where a span for resumed work belongs: under the active span if there is one (the
    request that stored the row), else under the stored traceparent (a background retry)."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    return context_of(traceparent)
