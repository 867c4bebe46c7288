"""create_app(settings) -> Litestar: routes, error mapping, CORS, OpenAPI, lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from recorder_service.errors import RecorderError
from recorder_service.http.admin import AdminController
from recorder_service.http.daily_webhook import DailyWebhookController
from recorder_service.http.errors import handle_recorder_error, handle_unexpected
from recorder_service.http.meetings import (
    PLAYBACK_PATHS,
    MeetingsController,
    PlaybackController,
    StartController,
)
from recorder_service.http.ops import MetricsPortSplit, healthz, metrics, readyz
from recorder_service.resources import freeze_startup_heap, open_resources
from recorder_service.settings import Settings
from recorder_service.telemetry import Telemetry
from recorder_service.telemetry.asgi import route_named_config

MAX_BODY_BYTES = 1024 * 1024

# Probes and scrapes would drown the traces; they are not what anyone debugs. The webhook
# route and the playback redirect trace themselves, more cheaply (http/tracing.py).
_UNTRACED_PATHS = [
    "^/healthz$",
    "^/readyz$",
    "^/metrics$",
    f"^{DailyWebhookController.path}$",
    PLAYBACK_PATHS,
]


def create_app(
    settings: Settings,
    *,
    run_background: bool | None = None,
    telemetry: Telemetry | None = None,
    freeze_heap: bool = False,
) -> Litestar:
    """`telemetry` defaults to the process's (Telemetry.from_global); tests pass their own.
    `freeze_heap`: the app owns its process (`serve`), see resources.freeze_startup_heap."""
    background = settings.background if run_background is None else run_background
    telemetry = telemetry or Telemetry.from_global()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings, telemetry=telemetry) as res:
            app.state.resources = res
            async with contextlib.AsyncExitStack() as stack:
                if background:
                    from recorder_service.workers.loops import running_loops

                    await stack.enter_async_context(running_loops(res))
                if freeze_heap:
                    freeze_startup_heap()
                yield

    return Litestar(
        route_handlers=[
            StartController,
            PlaybackController,
            MeetingsController,
            DailyWebhookController,
            AdminController,
            healthz,
            readyz,
            metrics,
        ],
        # Litestar turns this middleware into its OpenTelemetryPlugin, outermost of all.
        middleware=[
            route_named_config(
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
                exclude=_UNTRACED_PATHS,
                exclude_spans=["receive", "send"],
            ).middleware,
            *([MetricsPortSplit(settings.metrics_port)] if settings.metrics_port is not None else []),
        ],
        lifespan=[lifespan],
        exception_handlers={RecorderError: handle_recorder_error, Exception: handle_unexpected},
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["Content-Type"],
            # The browser must read Retry-After on 409/429 to pace its retries.
            expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
            max_age=600,
        )
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(
            title="recorder_service",
            version="1",
            description="Orchestrates Daily.co meeting recordings for Reflector.",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", description="RECORDER_INTERNAL_API_KEY"
                    ),
                }
            ),
        ),
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
        # logs.py configures logging once per process; Litestar's default would add its own handler.
        logging_config=None,
    )
