"""The webhook and playback routes' own server span and latency histogram, instead of the
generic ASGI instrumentation.

`POST /v1/daily/webhook` is the service's hottest path. There the generic OpenTelemetry ASGI
middleware costs as much CPU as verifying and storing the webhook together (docs/performance.md).
This middleware records only what an operator uses: one
SERVER span named after the route that continues the sender's `traceparent` (it carries
`webhook.signature_valid`; the store and apply spans nest under it), and
`recorder.webhook.request.duration` by status code. The anonymous playback redirect
(`GET /v1/meetings/{id}/cloud-recording`) does the same with `recorder.playback.request.duration`:
there the generic middleware was a tenth of the redirect's CPU once its read and presigning were
lean."""

from __future__ import annotations

import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import propagate
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from recorder_service.http.errors import status_for
from recorder_service.resources import Resources
from recorder_service.telemetry.instruments import Instruments

_PROPAGATED = (b"traceparent", b"tracestate", b"baggage")


class LeanServerTracing:
    """Litestar route middleware (set on a controller): one span and one histogram sample."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def record(self, instruments: Instruments, status: int, duration_s: float) -> None:
        instruments.record_webhook_request(status, duration_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        res: Resources = scope["litestar_app"].state.resources
        telemetry = res.telemetry
        method = str(scope.get("method") or "HTTP")
        route = str(scope.get("path_template") or scope["path"])
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _PROPAGATED}
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        with telemetry.tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={HTTP_REQUEST_METHOD: method, HTTP_ROUTE: route},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            except BaseException as exc:
                # Litestar answers the exception outside route middleware: its status is ours to tell.
                status = status_for(exc)
                raise
            finally:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self.record(telemetry.instruments, status, time.perf_counter() - started)


class LeanPlaybackTracing(LeanServerTracing):
    """The same for the playback redirect: `recorder.playback.request.duration`."""

    def record(self, instruments: Instruments, status: int, duration_s: float) -> None:
        instruments.record_playback_request(status, duration_s)
