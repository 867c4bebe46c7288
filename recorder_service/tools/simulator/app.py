"""The simulator's Litestar app and a runner for the demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from recorder_service.tools.asgi_server import serve_in_task
from recorder_service.tools.simulator.config import SimulatorConfig
from recorder_service.tools.simulator.control import control_router
from recorder_service.tools.simulator.errors import DailyError, error_type_for
from recorder_service.tools.simulator.rest import rest_router
from recorder_service.tools.simulator.runtime import Simulator, open_simulator

logger = logging.getLogger(__name__)


class RestCallMiddleware(ASGIMiddleware):
    """For handlers with an `operation` opt: authenticate, apply injected faults and latency,
    and count the call by its final status."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        operation = scope["route_handler"].opt.get("operation")
        if operation is None:
            await next_app(scope, receive, send)
            return
        sim = _simulator(scope["app"].state)
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            _authenticate(sim, scope)
            await sim.enter_operation(operation)
        except DailyError as exc:
            await _send_error(exc, send_counting)
        else:
            await next_app(scope, receive, send_counting)
        sim.calls.record(operation, status)


def _authenticate(sim: Simulator, scope: Scope) -> None:
    if sim.config.api_key is None:
        return
    headers = dict(scope["headers"])
    header = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise DailyError(400, "authorization-header-error", "missing or malformed Authorization header")
    if key.strip() != sim.config.api_key:
        raise DailyError(401, "authentication-error", "the provided API key is not valid")


async def _send_error(exc: DailyError, send: Send) -> None:
    body = msgspec.json.encode(exc.body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error_response(exc: DailyError) -> Response[Any]:
    return Response(content=msgspec.to_builtins(exc.body), status_code=exc.status)


def _daily_error(_: Request[Any, Any, Any], exc: DailyError) -> Response[Any]:
    return _error_response(exc)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    # Routing and parameter errors (unknown path, bad query value) in Daily's shape too.
    status = exc.status_code
    return _error_response(DailyError(status, error_type_for(status), str(exc.detail)))


def _unexpected_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.error("simulator handler failed", exc_info=exc)
    return _error_response(DailyError(500, "server-error", "internal error"))


def _simulator(state: State) -> Simulator:
    return cast(Simulator, state.simulator)


def create_simulator_app(config: SimulatorConfig) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_simulator(config) as simulator:
            app.state.simulator = simulator
            yield

    async def provide_simulator(state: State) -> Simulator:
        return _simulator(state)

    return Litestar(
        route_handlers=[rest_router, control_router],
        dependencies={"sim": Provide(provide_simulator)},
        middleware=[RestCallMiddleware()],
        exception_handlers={
            DailyError: _daily_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,
    )


async def run_simulator(host: str, port: int, config: SimulatorConfig) -> None:
    """Serves until cancelled."""
    async with serve_in_task(create_simulator_app(config), host, port) as base_url:
        print(f"Daily simulator: REST API at {base_url}/v1, control API at {base_url}/_sim", flush=True)
        await asyncio.Event().wait()
