"""Traces, metrics and trace context. This package's top level imports only the OpenTelemetry
API (never the SDK), so domain code can use it; SDK set-up lives in `setup.py`."""

from recorder_service.telemetry.context import annotate_current_span, current_traceparent, parent_context
from recorder_service.telemetry.instruments import (
    Instruments,
    PendingCallbacks,
    Telemetry,
    disabled_telemetry,
)

__all__ = [
    "Instruments",
    "PendingCallbacks",
    "Telemetry",
    "annotate_current_span",
    "current_traceparent",
    "disabled_telemetry",
    "parent_context",
]
