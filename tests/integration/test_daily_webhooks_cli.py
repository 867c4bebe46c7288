"""Webhook management and the `daily` CLI against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath

from recorder_service.adapters.daily.client import DailyClient, DailyWebhook
from recorder_service.errors import DailyError
from recorder_service.tools.asgi_server import serve_in_task
from recorder_service.tools.daily_webhooks import (
    WEBHOOK_EVENT_TYPES,
    EnsureAction,
    ensure_webhook,
    list_webhooks,
)
from tests.plugins.simulator import DailySim
from tests.support.paths import REPO_ROOT

SECRET = base64.b64encode(b"recorder-probe-test-secret-00001").decode()
OTHER_SECRET = base64.b64encode(b"someone-elses-webhook-secret-002").decode()
REPO = REPO_ROOT


@dataclass(frozen=True)
class Received:
    name: str
    headers: dict[str, str]
    body: bytes

    @property
    def is_verification(self) -> bool:
        return bool(json.loads(self.body) == {"test": "test"})

    def signed_with(self, secret_b64: str) -> bool:
        timestamp = self.headers["x-webhook-timestamp"]
        mac = hmac.new(base64.b64decode(secret_b64), timestamp.encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest(
            base64.b64encode(mac.digest()).decode(), self.headers["x-webhook-signature"]
        )


@dataclass
class Receiver:
    """Answers 200 to any POST /<name>, or 500 while `failures_left` > 0."""

    base_url: str = ""
    failures_left: int = 0
    requests: list[Received] = field(default_factory=list)

    def url(self, name: str = "hook") -> str:
        return f"{self.base_url}/{name}"

    def to(self, name: str = "hook") -> list[Received]:
        return [r for r in self.requests if r.name == name]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    @post("/{name:str}", status_code=200)
    async def hook(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        state.requests.append(Received(name, dict(request.headers), await request.body()))
        if state.failures_left > 0:
            state.failures_left -= 1
            return Response(b"", status_code=500)
        return Response(b"", status_code=200)

    async with serve_in_task(Litestar([hook], openapi_config=None, logging_config=None)) as url:
        state.base_url = url
        yield state


@pytest.fixture
async def daily(daily_sim: DailySim) -> AsyncIterator[DailyClient]:
    async with DailyClient.build_http(daily_sim.base_url, "sim-key", 5.0) as http:
        yield DailyClient(http, max_attempts=1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def hook_for(daily: DailyClient, url: str) -> DailyWebhook:
    [hook] = [h for h in await daily.list_webhooks() if h.url == url]
    return hook


async def test_ensure_creates_webhook_and_leaves_others_alone(
    daily: DailyClient, daily_sim: DailySim, receiver: Receiver
) -> None:
    other = await daily_sim.create_webhook(receiver.url("other"), OTHER_SECRET)

    result = await ensure_webhook(daily, receiver.url(), SECRET)

    assert result.action is EnsureAction.CREATED
    hook = await hook_for(daily, receiver.url())
    assert hook.uuid == result.webhook.uuid
    assert hook.state == "ACTIVE"
    assert hook.retry_type == "exponential"
    assert hook.event_types == list(WEBHOOK_EVENT_TYPES)
    assert hook.hmac == SECRET
    [verification] = receiver.to("hook")
    assert verification.is_verification and verification.signed_with(SECRET)
    untouched = await hook_for(daily, receiver.url("other"))
    assert (untouched.uuid, untouched.hmac, untouched.retry_type) == (
        other["uuid"],
        OTHER_SECRET,
        "circuit-breaker",
    )
    assert "created" in result.describe()


async def test_ensure_on_active_webhook_does_nothing(
    daily: DailyClient, daily_sim: DailySim, receiver: Receiver
) -> None:
    first = await ensure_webhook(daily, receiver.url(), SECRET)
    second = await ensure_webhook(daily, receiver.url(), SECRET)

    assert second.action is EnsureAction.UNCHANGED
    assert second.webhook.uuid == first.webhook.uuid
    assert "nothing to do" in second.describe()
    operations = (await daily_sim.calls())["operations"]
    assert operations["create_webhook"] == {"200": 1}
    assert "update_webhook" not in operations
    assert len(receiver.to("hook")) == 1  # no second verification request


async def test_ensure_reactivates_failed_webhook(
    daily: DailyClient, daily_sim: DailySim, receiver: Receiver
) -> None:
    # An older setup with Daily's default circuit breaker; the receiver then fails 3 deliveries.
    old = await daily_sim.create_webhook(receiver.url(), OTHER_SECRET, retry_type="circuit-breaker")
    receiver.failures_left = 3
    session = await daily_sim.join("tripped-room")  # meeting.started, participant.joined
    await daily_sim.leave("tripped-room", session)  # participant.left, meeting.ended

    async def failed() -> bool:
        return (await hook_for(daily, receiver.url())).state == "FAILED"

    await eventually(failed)

    result = await ensure_webhook(daily, receiver.url(), SECRET)

    assert result.action is EnsureAction.REACTIVATED
    assert result.previous_state == "FAILED"
    hook = await hook_for(daily, receiver.url())
    assert hook.uuid == old["uuid"]  # the same webhook, not deleted and re-created
    assert (hook.state, hook.failed_count, hook.hmac) == ("ACTIVE", 0, SECRET)
    assert receiver.requests[-1].is_verification and receiver.requests[-1].signed_with(SECRET)
    assert "delete_webhook" not in (await daily_sim.calls())["operations"]

    await daily_sim.join("tripped-room")  # delivery is back on

    async def delivered() -> bool:
        return any(not r.is_verification and r.signed_with(SECRET) for r in receiver.requests)

    await eventually(delivered)


async def test_ensure_fails_when_url_does_not_verify(daily: DailyClient, receiver: Receiver) -> None:
    receiver.failures_left = 1

    with pytest.raises(DailyError) as raised:
        await ensure_webhook(daily, receiver.url(), SECRET)

    assert raised.value.status_code == 400
    assert await daily.list_webhooks() == []


async def test_list_prints_webhooks_without_secret(
    daily: DailyClient, daily_sim: DailySim, receiver: Receiver
) -> None:
    created = await daily_sim.create_webhook(receiver.url(), SECRET, event_types=["meeting.ended"])
    out = io.StringIO()

    hooks = await list_webhooks(daily, out=out)

    text = out.getvalue()
    assert [h.uuid for h in hooks] == [created["uuid"]]
    header, row = text.splitlines()
    assert header.split() == ["uuid", "url", "state", "failedCount", "retryType", "eventTypes"]
    assert row.split() == [created["uuid"], receiver.url(), "ACTIVE", "0", "circuit-breaker", "meeting.ended"]
    assert SECRET not in text and created["hmac"] not in text


async def cli(daily_sim: DailySim, *args: str, **extra_env: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDER_")}
    env |= {"RECORDER_DAILY_API_URL": daily_sim.base_url, "RECORDER_DAILY_API_KEY": "sim-key"}
    env |= extra_env
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "recorder_service.cli",
        "daily",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_cli_webhook_list(daily_sim: DailySim, receiver: Receiver) -> None:
    created = await daily_sim.create_webhook(receiver.url(), SECRET)

    code, out, _ = await cli(daily_sim, "webhook", "list")

    assert code == 0
    assert created["uuid"] in out and receiver.url() in out and "ACTIVE" in out
    assert SECRET not in out


async def test_cli_webhook_ensure(daily_sim: DailySim, receiver: Receiver) -> None:
    code, _, err = await cli(daily_sim, "webhook", "ensure", "--url", receiver.url())
    assert code == 1
    assert "RECORDER_DAILY_WEBHOOK_SECRETS" in err and len(err.strip().splitlines()) == 1

    secrets = {"RECORDER_DAILY_WEBHOOK_SECRETS": f"{SECRET},{OTHER_SECRET}"}
    code, out, _ = await cli(daily_sim, "webhook", "ensure", "--url", receiver.url(), **secrets)
    assert code == 0 and "created" in out
    assert receiver.to("hook")[-1].signed_with(SECRET)  # the first secret is the webhook's

    code, out, _ = await cli(daily_sim, "webhook", "ensure", "--url", receiver.url(), **secrets)
    assert code == 0 and "nothing to do" in out

    receiver.failures_left = 1
    code, out, err = await cli(daily_sim, "webhook", "ensure", "--url", receiver.url("other"), **secrets)
    assert code == 1
    assert "create_webhook failed: HTTP 400" in err
    assert SECRET not in err + out


async def test_ensure_subscribes_an_active_webhook_to_the_relayed_types(
    daily: DailyClient, daily_sim: DailySim, receiver: Receiver
) -> None:
    created = await ensure_webhook(daily, receiver.url(), SECRET)
    relayed = ("participant.joined", "participant.left")

    updated = await ensure_webhook(daily, receiver.url(), SECRET, relayed=relayed)

    assert updated.action is EnsureAction.UPDATED
    hook = await hook_for(daily, receiver.url())
    assert hook.uuid == created.webhook.uuid
    assert hook.event_types == [*WEBHOOK_EVENT_TYPES, *relayed]
    again = await ensure_webhook(daily, receiver.url(), SECRET, relayed=relayed)
    assert again.action is EnsureAction.UNCHANGED
    assert (await daily_sim.calls())["operations"]["update_webhook"] == {"200": 1}
