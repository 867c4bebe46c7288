"""Webhook registry and signed, asynchronous delivery (reference §7-§8).

Each webhook has one queue and one worker task, so its events arrive in emission order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from recorder_service.tools.simulator.errors import invalid_request, not_found
from recorder_service.tools.simulator.model import Event
from recorder_service.tools.simulator.signing import is_base64, new_webhook_secret, sign_webhook

DELIVERY_TIMEOUT_S = 5.0
# Daily: the verification request must get a 200 "within a few seconds".
VERIFY_TIMEOUT_S = 3.0
CIRCUIT_BREAKER_LIMIT = 3
EXPONENTIAL_ATTEMPTS = 5
# Daily backs off up to 15 min; the simulator keeps tests fast.
EXPONENTIAL_BASE_DELAY_S = 0.05
RETRY_TYPES = ("circuit-breaker", "exponential")
VERIFICATION_BODY = b'{"test":"test"}'


class WebhookFields(msgspec.Struct, kw_only=True):
    """Body of POST /webhooks and POST /webhooks/:uuid; unknown fields are ignored."""

    url: str | msgspec.UnsetType = msgspec.UNSET
    eventTypes: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    hmac: str | msgspec.UnsetType | None = msgspec.UNSET
    basicAuth: str | msgspec.UnsetType | None = msgspec.UNSET
    retryType: str | msgspec.UnsetType | None = msgspec.UNSET


@dataclass
class Webhook:
    uuid: str
    url: str
    hmac: str
    basic_auth: str | None
    retry_type: str
    event_types: list[str]
    domain_id: str
    created_at: float
    updated_at: float
    state: str = "ACTIVE"
    failed_count: int = 0
    last_moment_pushed: float | None = None
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None

    def wants(self, event_type: str) -> bool:
        return self.state == "ACTIVE" and (not self.event_types or event_type in self.event_types)

    def as_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "url": self.url,
            "hmac": self.hmac,
            "basicAuth": self.basic_auth,
            "retryType": self.retry_type,
            "eventTypes": self.event_types,
            "state": self.state,
            "failedCount": self.failed_count,
            "lastMomentPushed": _iso(self.last_moment_pushed),
            "domainId": self.domain_id,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Delivery:
    webhook_uuid: str
    url: str
    event_type: str
    event_id: str
    status_code: int | None  # None: timeout or connection error
    attempt: int
    at: float


class WebhookDispatcher:
    def __init__(
        self, http: httpx.AsyncClient, domain_id: str, delay_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.http = http
        self.domain_id = domain_id
        self.delay_s = delay_s
        self.clock = clock
        self.webhooks: dict[str, Webhook] = {}
        self.deliveries: list[Delivery] = []
        # While paused, events are dropped, not queued: they model webhooks Daily never sent.
        self.paused = False

    def get(self, webhook_uuid: str) -> Webhook:
        hook = self.webhooks.get(webhook_uuid)
        if hook is None:
            raise not_found(f"webhook {webhook_uuid} not found")
        return hook

    async def create(self, fields: WebhookFields) -> Webhook:
        if not isinstance(fields.url, str):
            raise invalid_request("url is required")
        now = self.clock()
        hook = Webhook(
            uuid=str(uuid.uuid4()),
            url=fields.url,
            hmac=new_webhook_secret(),
            basic_auth=None,
            retry_type="circuit-breaker",
            event_types=[],
            domain_id=self.domain_id,
            created_at=now,
            updated_at=now,
        )
        _apply(hook, fields)
        await self._verify(hook)
        self.webhooks[hook.uuid] = hook
        return hook

    async def update(self, webhook_uuid: str, fields: WebhookFields) -> Webhook:
        """Verifies the new settings first; on 200 a FAILED webhook becomes ACTIVE again."""
        current = self.get(webhook_uuid)
        candidate = dataclasses.replace(current)
        _apply(candidate, fields)
        await self._verify(candidate)
        _apply(current, fields)
        current.state, current.failed_count, current.updated_at = "ACTIVE", 0, self.clock()
        return current

    async def delete(self, webhook_uuid: str) -> Webhook:
        hook = self.get(webhook_uuid)
        del self.webhooks[webhook_uuid]
        await _stop(hook)
        return hook

    def publish(self, event: Event) -> None:
        if self.paused:
            return
        envelope: dict[str, Any] = {"version": "1.0.0", "type": event.type, "id": event.id}
        # Daily sends event_ts as a float (reference §9), e.g. 1767262231.604.
        envelope |= {"payload": event.payload, "event_ts": round(self.clock(), 3)}
        body = msgspec.json.encode(envelope)
        for hook in self.webhooks.values():
            if hook.wants(event.type):
                hook.queue.put_nowait(body)
                if hook.worker is None:
                    hook.worker = asyncio.create_task(self._run(hook), name=f"sim-webhook-{hook.uuid}")

    async def close(self) -> None:
        hooks = list(self.webhooks.values())
        self.webhooks.clear()
        for hook in hooks:
            await _stop(hook)

    async def _run(self, hook: Webhook) -> None:
        while True:
            body = await hook.queue.get()
            if hook.state != "ACTIVE":
                continue
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            await self._deliver(hook, body)

    async def _deliver(self, hook: Webhook, body: bytes) -> None:
        attempts = EXPONENTIAL_ATTEMPTS if hook.retry_type == "exponential" else 1
        for attempt in range(1, attempts + 1):
            status = await self._post(hook, body, DELIVERY_TIMEOUT_S, attempt)
            if status == 200:
                hook.failed_count, hook.last_moment_pushed = 0, self.clock()
                return
            hook.failed_count += 1
            if hook.retry_type == "circuit-breaker" and hook.failed_count >= CIRCUIT_BREAKER_LIMIT:
                hook.state = "FAILED"
                _drop_queued(hook)
                return
            if attempt < attempts:
                await asyncio.sleep(EXPONENTIAL_BASE_DELAY_S * 2 ** (attempt - 1))

    async def _verify(self, hook: Webhook) -> None:
        status = await self._post(hook, VERIFICATION_BODY, VERIFY_TIMEOUT_S, 1)
        if status != 200:
            # Invented text: Daily's wording is not documented.
            raise invalid_request(f"webhook url {hook.url} answered the verification request with {status}")

    async def _post(self, hook: Webhook, body: bytes, timeout_s: float, attempt: int) -> int | None:
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Timestamp": timestamp,
            "X-Webhook-Signature": sign_webhook(hook.hmac, timestamp, body),
        }
        if hook.basic_auth:
            headers["Authorization"] = f"Basic {hook.basic_auth}"
        status: int | None = None
        try:
            response = await self.http.post(hook.url, content=body, headers=headers, timeout=timeout_s)
            status = response.status_code
        except httpx.HTTPError:
            status = None
        event = msgspec.json.decode(body)
        self.deliveries.append(
            Delivery(
                webhook_uuid=hook.uuid,
                url=hook.url,
                event_type=event.get("type", "verification"),
                event_id=event.get("id", "verification"),
                status_code=status,
                attempt=attempt,
                at=self.clock(),
            )
        )
        return status


def _apply(hook: Webhook, fields: WebhookFields) -> None:
    if isinstance(fields.url, str):
        if not fields.url.startswith(("http://", "https://")):
            raise invalid_request("url must be an http(s) URL")
        hook.url = fields.url
    if isinstance(fields.hmac, str):
        if not is_base64(fields.hmac):
            raise invalid_request("hmac must be a base64 string")
        hook.hmac = fields.hmac
    if fields.eventTypes is not msgspec.UNSET:
        hook.event_types = list(fields.eventTypes or [])
    if fields.basicAuth is not msgspec.UNSET:
        hook.basic_auth = fields.basicAuth
    if isinstance(fields.retryType, str):
        if fields.retryType not in RETRY_TYPES:
            raise invalid_request(f"retryType must be one of {', '.join(RETRY_TYPES)}")
        hook.retry_type = fields.retryType


def _drop_queued(hook: Webhook) -> None:
    """A FAILED webhook receives nothing more, including what was already queued."""
    while not hook.queue.empty():
        hook.queue.get_nowait()


async def _stop(hook: Webhook) -> None:
    if hook.worker is not None:
        hook.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hook.worker
        hook.worker = None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
