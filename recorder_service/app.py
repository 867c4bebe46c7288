"""create_app(settings) -> Litestar: routes, error mapping, CORS, OpenAPI, lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from recorder_service.errors import RecorderError
from recorder_service.http.admin import AdminController
from recorder_service.http.errors import handle_recorder_error, handle_unexpected
from recorder_service.http.internal import MeetingsController
from recorder_service.http.ops import healthz, readyz
from recorder_service.http.playback import PlaybackController
from recorder_service.http.public import StartController
from recorder_service.http.webhooks import DailyWebhookController
from recorder_service.resources import Resources, open_resources
from recorder_service.settings import Settings

MAX_BODY_BYTES = 1024 * 1024

BackgroundStarter = Callable[[Resources], AbstractAsyncContextManager[None]]


def create_app(settings: Settings, *, run_background: bool | None = None) -> Litestar:
    background = settings.background if run_background is None else run_background

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings) as res:
            app.state.resources = res
            async with contextlib.AsyncExitStack() as stack:
                if background:
                    from recorder_service.workers.loops import running_loops

                    await stack.enter_async_context(running_loops(res))
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
        ],
        lifespan=[lifespan],
        exception_handlers={RecorderError: handle_recorder_error, Exception: handle_unexpected},
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["Content-Type"],
            # The browser must read Retry-After on 409/429 to pace its retries.
            expose_headers=["Retry-After"],
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
    )
