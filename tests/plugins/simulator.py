"""Pytest fixtures: the Daily simulator, served in-process over real HTTP.

`daily_sim` runs it with `api_key="sim-key"`; `daily_sim_factory(config)` runs it with any
`SimulatorConfig` (several per test if needed). Both shut their servers down at teardown."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from recorder_service.tools.asgi_server import serve_in_task
from recorder_service.tools.simulator import SimulatorConfig, create_simulator_app

Json = dict[str, Any]


class DailySim:
    """A running simulator: `base_url` is Daily's REST base (…/v1); methods drive /_sim."""

    def __init__(self, root_url: str, api_key: str | None, http: httpx.AsyncClient) -> None:
        self.root_url = root_url
        self.base_url = f"{root_url}/v1"
        self.api_key = api_key
        self.http = http

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def _control(self, method: str, path: str, body: Json | None = None) -> Any:
        response = await self.http.request(method, f"{self.root_url}/_sim{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def join(self, room: str, user_name: str = "Guest") -> str:
        result = await self._control("POST", f"/rooms/{room}/join", {"user_name": user_name})
        return str(result["session_id"])

    async def leave(self, room: str, session_id: str) -> None:
        await self._control("POST", f"/rooms/{room}/leave", {"session_id": session_id})

    async def end_meeting(self, room: str) -> None:
        await self._control("POST", f"/rooms/{room}/end")

    async def client_start(self, room: str, type: str = "cloud", instance_id: str | None = None) -> str:
        """Starts a recording the way daily-js does; returns the recording id."""
        body: Json = {"type": type}
        if instance_id is not None:
            body["instanceId"] = instance_id
        result = await self._control("POST", f"/rooms/{room}/client-start", body)
        return str(result["recording_id"])

    async def fault(
        self,
        operation: str,
        status: int,
        count: int = 1,
        latency_s: float = 0.0,
        error: str | None = None,
        info: str | None = None,
        after: int = 0,
    ) -> None:
        """After `after` untouched calls, the next `count` calls of `operation` ("*" = any) answer
        `status` (0: only delay)."""
        body: Json = {
            "operation": operation,
            "status": status,
            "count": count,
            "latency_s": latency_s,
            "after": after,
        }
        if error is not None:
            body["error"] = error
        if info is not None:
            body["info"] = info
        await self._control("POST", "/faults", body)

    async def clear_faults(self) -> None:
        await self._control("DELETE", "/faults")

    async def latency(self, operation: str, latency_s: float) -> None:
        """Every call of `operation` waits `latency_s` first (0 removes it)."""
        await self._control("POST", "/latency", {"operation": operation, "latency_s": latency_s})

    async def calls(self) -> Json:
        """{"operations": {op: {"<status>": n}}, "starts": [{room_name, type, instance_id, count}]}."""
        result: Json = await self._control("GET", "/calls")
        return result

    async def recordings(self) -> list[Json]:
        """Every recording with internal fields (type, instance_id, via)."""
        result: list[Json] = await self._control("GET", "/recordings")
        return result

    async def deliveries(self) -> list[Json]:
        """Webhook delivery attempts: webhook_uuid, url, event_type, event_id, status_code, attempt."""
        result: list[Json] = await self._control("GET", "/webhook-deliveries")
        return result

    async def create_webhook(
        self,
        url: str,
        secret_b64: str,
        event_types: list[str] | None = None,
        retry_type: str = "circuit-breaker",
    ) -> Json:
        """Through the real POST /v1/webhooks (which first sends the verification request)."""
        body: Json = {"url": url, "hmac": secret_b64, "retryType": retry_type}
        if event_types is not None:
            body["eventTypes"] = event_types
        response = await self.http.post(f"{self.base_url}/webhooks", json=body, headers=self.auth_headers)
        response.raise_for_status()
        result: Json = response.json()
        return result

    async def recording_error(self, recording_id: str, error_msg: str) -> None:
        await self._control("POST", f"/recordings/{recording_id}/error", {"error_msg": error_msg})

    async def pause_webhooks(self) -> None:
        """Events emitted while paused are dropped, never delivered later."""
        await self._control("POST", "/webhooks/pause")

    async def resume_webhooks(self) -> None:
        await self._control("POST", "/webhooks/resume")

    async def reset(self) -> None:
        await self._control("POST", "/reset")


DailySimFactory = Callable[[SimulatorConfig], Awaitable[DailySim]]


@pytest.fixture
async def daily_sim_factory() -> AsyncIterator[DailySimFactory]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(config: SimulatorConfig) -> DailySim:
            root_url = await stack.enter_async_context(serve_in_task(create_simulator_app(config)))
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(10.0)))
            return DailySim(root_url, config.api_key, http)

        yield start


@pytest.fixture
async def daily_sim(daily_sim_factory: DailySimFactory) -> DailySim:
    return await daily_sim_factory(SimulatorConfig(api_key="sim-key"))
