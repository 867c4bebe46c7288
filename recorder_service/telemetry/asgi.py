"""Server spans and HTTP metrics named after the route template, not the raw path.

Litestar's OpenTelemetry plugin names spans when a request arrives, before routing, after
the raw path (`PUT /v1/meetings/m-1`): one name per meeting. Once Litestar has routed the
request, `scope["path_template"]` holds the template; this renames the span to it and
exposes it the way opentelemetry-instrumentation-asgi reads a parameterised route for its
`http.server.*` metrics (`scope["route"].path_format`, its FastAPI convention)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryInstrumentationMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE


@dataclass(frozen=True)
class _RouteTemplate:
    path_format: str


def _span_details_before_routing(scope: Scope) -> tuple[str, dict[str, Any]]:
    return str(scope.get("method") or "HTTP"), {}


def _name_after_route(scope: Scope) -> None:
    template = scope.get("path_template")
    if not isinstance(template, str) or "route" in scope:
        return
    scope["route"] = _RouteTemplate(template)  # type: ignore[typeddict-unknown-key]
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{scope.get('method') or 'HTTP'} {template}")
        span.set_attribute(HTTP_ROUTE, template)


def _naming_route(app: ASGIApp) -> ASGIApp:
    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        # The server span ends with the last body message: name it when the response starts.
        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                _name_after_route(scope)
            await send(message)

        await app(scope, receive, send_named)

    return named


class RouteNamingMiddleware(OpenTelemetryInstrumentationMiddleware):
    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        super().__init__(app=_naming_route(app), config=config)
        # Excluded paths (probes, the self-traced webhook) skip the instrumentation and go
        # straight to `self.app`: they have no generic span to rename either.
        self.app = app


def route_named_config(**kwargs: Any) -> OpenTelemetryConfig:
    return OpenTelemetryConfig(
        scope_span_details_extractor=_span_details_before_routing,
        middleware_class=RouteNamingMiddleware,
        **kwargs,
    )
