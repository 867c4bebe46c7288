"""Daily.co REST client: typed errors from Daily's error bodies, bounded retries.

Daily's error texts are the only stable signal for "not hosting" and "active stream"
(their status codes and error types are not documented), so we match on `info`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpx
import msgspec
from opentelemetry.trace import SpanKind

from recorder_service.adapters.retry_after import parse_retry_after
from recorder_service.core.ports import CallGate
from recorder_service.errors import (
    DailyActiveStream,
    DailyError,
    DailyNotHosting,
    DailyRateLimited,
)
from recorder_service.telemetry import Telemetry, disabled_telemetry

NOT_HOSTING_TEXT = "does not seem to be hosting a call"
ACTIVE_STREAM_TEXT = "has an active stream"

StartType = Literal["cloud", "raw-tracks", "cloud-audio-only"]


class DailyErrorBody(msgspec.Struct):
    error: str | None = None
    info: str | None = None


class StartRecordingRequest(msgspec.Struct, omit_defaults=True, rename="camel"):
    type: str
    instance_id: str
    max_duration: int | None = None


class StopRecordingRequest(msgspec.Struct, omit_defaults=True, rename="camel"):
    type: str
    instance_id: str


class CreateWebhookRequest(msgspec.Struct, omit_defaults=True, rename="camel"):
    url: str
    hmac: str | None = None
    event_types: list[str] | None = None
    retry_type: str | None = None


class DailyWebhook(msgspec.Struct, rename="camel"):
    uuid: str
    url: str
    state: str | None = None
    failed_count: int | None = None
    event_types: list[str] | None = None
    retry_type: str | None = None
    hmac: str | None = None


_error_decoder = msgspec.json.Decoder(DailyErrorBody)
_webhooks_decoder = msgspec.json.Decoder(list[DailyWebhook])
_webhook_decoder = msgspec.json.Decoder(DailyWebhook)


def classify_error(status_code: int, body: bytes, operation: str) -> DailyError:
    try:
        parsed = _error_decoder.decode(body) if body else DailyErrorBody()
    except (msgspec.DecodeError, msgspec.ValidationError):
        parsed = DailyErrorBody(info=body[:200].decode("utf-8", "replace"))
    info = parsed.info or ""
    message = f"Daily {operation} failed: HTTP {status_code}"
    if parsed.error or info:
        message += f" {parsed.error or ''}: {info}".rstrip()
    kwargs: dict[str, Any] = {"status_code": status_code, "error_type": parsed.error, "info": parsed.info}
    if NOT_HOSTING_TEXT in info:
        return DailyNotHosting(message, **kwargs)
    if ACTIVE_STREAM_TEXT in info:
        return DailyActiveStream(message, **kwargs)
    if status_code == 429:
        return DailyRateLimited(message, **kwargs)
    return DailyError(message, **kwargs)


def segment(value: str) -> str:
    """One path segment of a Daily URL: a room name or id never adds a segment or a query."""
    return quote(value, safe="")


def _is_retryable(exc: DailyError) -> bool:
    code = exc.status_code
    return code is None or code == 429 or code >= 500


class DailyClient:
    """One per process; `http` is a pooled AsyncClient whose base_url is Daily's API."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_attempts: int = 3,
        retry_base_s: float = 0.5,
        retry_cap_s: float = 8.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or disabled_telemetry()
        self._http = http
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s

    @staticmethod
    def build_http(base_url: str, api_key: str, timeout_s: float) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=False,
        )

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        retry: bool = True,
        gate: CallGate | None = None,
    ) -> bytes:
        """Retries 5xx, 429 and transport errors only, with full jitter; never 4xx. With a `gate`,
        every attempt passes through it (the start budget counts retries too)."""
        tracer = self._telemetry.tracer
        attributes = {"http.request.method": method, "daily.operation": operation}
        with tracer.start_as_current_span(
            f"daily.{operation}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            attempts = self._max_attempts if retry else 1
            last: DailyError | None = None
            for attempt in range(1, attempts + 1):
                span.set_attribute("daily.attempts", attempt)
                retry_after: float | None = None
                if gate is not None:
                    await gate.enter()
                started = time.monotonic()
                try:
                    response = await self._send(method, path, json, params, gate)
                except httpx.TimeoutException as exc:
                    self._observe(operation, "timeout", started)
                    last = DailyError(f"Daily {operation} timed out: {type(exc).__name__}")
                except httpx.HTTPError as exc:
                    self._observe(operation, "unreachable", started)
                    last = DailyError(f"Daily {operation} unreachable: {type(exc).__name__}")
                else:
                    self._observe(operation, str(response.status_code), started)
                    span.set_attribute("http.response.status_code", response.status_code)
                    if response.is_success:
                        return response.content
                    last = classify_error(response.status_code, response.content, operation)
                    if isinstance(last, DailyRateLimited):
                        retry_after = last.retry_after_s = parse_retry_after(
                            response.headers.get("retry-after")
                        )
                    if not _is_retryable(last):
                        raise last
                if attempt < attempts:
                    backoff = min(self._retry_cap_s, self._retry_base_s * 2 ** (attempt - 1))
                    await asyncio.sleep(max(retry_after or 0.0, random.uniform(0, backoff)))
            assert last is not None
            raise last

    async def _send(
        self,
        method: str,
        path: str,
        json: bytes | None,
        params: Mapping[str, str | int] | None,
        gate: CallGate | None,
    ) -> httpx.Response:
        status: int | None = None
        retry_after: float | None = None
        try:
            response = await self._http.request(
                method,
                path.lstrip("/"),
                content=json,
                params=params,
                headers={"Content-Type": "application/json"} if json is not None else None,
            )
            status = response.status_code
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            return response
        finally:
            if gate is not None:
                await gate.leave(status, retry_after)

    def _observe(self, operation: str, status: str, started: float) -> None:
        self._telemetry.instruments.record_daily_request(operation, status, time.monotonic() - started)

    async def start_recording(
        self,
        room_name: str,
        *,
        type: StartType,
        instance_id: str,
        max_duration_s: int | None = None,
        gate: CallGate | None = None,
    ) -> None:
        body = msgspec.json.encode(
            StartRecordingRequest(type=type, instance_id=instance_id, max_duration=max_duration_s)
        )
        # Daily's success body is undocumented: treat it as opaque.
        path = f"rooms/{segment(room_name)}/recordings/start"
        await self._request("start_recording", "POST", path, json=body, gate=gate)

    async def stop_recording(self, room_name: str, *, type: StartType, instance_id: str) -> None:
        body = msgspec.json.encode(StopRecordingRequest(type=type, instance_id=instance_id))
        await self._request(
            "stop_recording", "POST", f"rooms/{segment(room_name)}/recordings/stop", json=body
        )

    async def get_recording_raw(self, recording_id: str) -> bytes:
        return await self._request("get_recording", "GET", f"recordings/{segment(recording_id)}")

    async def delete_recording(self, recording_id: str) -> None:
        """Daily's own record of a recording (`DELETE /recordings/:id`). For a custom bucket Daily
        deletes only its reference; the objects in our bucket stay (we delete those ourselves).
        A 404 (unknown or already deleted) raises DailyError with status_code 404."""
        await self._request("delete_recording", "DELETE", f"recordings/{recording_id}")

    async def list_recordings_raw(
        self,
        *,
        limit: int = 100,
        starting_after: str | None = None,
        ending_before: str | None = None,
        room_name: str | None = None,
    ) -> bytes:
        params: dict[str, str | int] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        if ending_before:
            params["ending_before"] = ending_before
        if room_name:
            params["room_name"] = room_name
        return await self._request("list_recordings", "GET", "recordings", params=params)

    async def list_webhooks(self) -> list[DailyWebhook]:
        # Daily answers a bare JSON array here, not {"data": [...]}.
        return _webhooks_decoder.decode(await self._request("list_webhooks", "GET", "webhooks"))

    async def create_webhook(
        self,
        url: str,
        *,
        hmac_secret: str | None,
        event_types: list[str] | None = None,
        retry_type: str | None = None,
    ) -> DailyWebhook:
        body = msgspec.json.encode(
            CreateWebhookRequest(url=url, hmac=hmac_secret, event_types=event_types, retry_type=retry_type)
        )
        # Not retried: Daily runs a verification request on every create.
        raw = await self._request("create_webhook", "POST", "webhooks", json=body, retry=False)
        return _webhook_decoder.decode(raw)

    async def update_webhook(
        self,
        uuid: str,
        url: str,
        *,
        hmac_secret: str | None = None,
        event_types: list[str] | None = None,
        retry_type: str | None = None,
    ) -> DailyWebhook:
        # POST (not PATCH) also re-activates a FAILED webhook after a fresh verification.
        body = msgspec.json.encode(
            CreateWebhookRequest(url=url, hmac=hmac_secret, event_types=event_types, retry_type=retry_type)
        )
        raw = await self._request(
            "update_webhook", "POST", f"webhooks/{segment(uuid)}", json=body, retry=False
        )
        return _webhook_decoder.decode(raw)
