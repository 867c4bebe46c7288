from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.plugins.receiver import CallbackReceiver

BODY = json.dumps({"type": "recording.raw_tracks_ready", "data": {"meeting_id": "m-1"}})
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def signed_headers(secret: str, body: str, msg_id: str | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


async def post(url: str, body: str, headers: dict[str, str], timeout_s: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s)) as http:
        return await http.post(url, content=body.encode(), headers=headers)


async def test_correctly_signed_delivery_is_accepted_and_recorded(
    callback_receiver: CallbackReceiver,
) -> None:
    assert callback_receiver.secret.startswith("whsec_")
    headers = signed_headers(callback_receiver.secret, BODY) | {"traceparent": TRACEPARENT}

    response = await post(callback_receiver.url, BODY, headers)

    assert response.status_code == 200
    [delivery] = await callback_receiver.wait_for(1, timeout_s=2)
    assert delivery.signature_valid
    assert delivery.status == 200
    assert delivery.webhook_id == headers["webhook-id"]
    assert delivery.webhook_timestamp == headers["webhook-timestamp"]
    assert delivery.webhook_signature == headers["webhook-signature"]
    assert delivery.traceparent == TRACEPARENT
    assert delivery.body == BODY.encode()
    assert delivery.payload == json.loads(BODY)


async def test_tampered_or_unsigned_delivery_gets_401(callback_receiver: CallbackReceiver) -> None:
    headers = signed_headers(callback_receiver.secret, BODY)
    tampered = BODY.replace("m-1", "m-2")

    assert (await post(callback_receiver.url, tampered, headers)).status_code == 401
    assert (await post(callback_receiver.url, BODY, {"content-type": "application/json"})).status_code == 401
    other_secret = signed_headers(CallbackReceiver().secret, BODY)
    assert (await post(callback_receiver.url, BODY, other_secret)).status_code == 401

    assert [d.status for d in callback_receiver.all_requests] == [401, 401, 401]
    assert not any(d.signature_valid for d in callback_receiver.all_requests)
    assert callback_receiver.accepted == []


async def test_fail_next_answers_the_given_status_then_recovers(callback_receiver: CallbackReceiver) -> None:
    callback_receiver.fail_next(2, status=503)
    msg_id = "msg_retry"

    statuses = [
        (
            await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY, msg_id))
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [503, 503, 200]
    assert [d.webhook_id for d in callback_receiver.accepted] == [msg_id]
    assert len(callback_receiver.all_requests) == 3


async def test_respond_with_429_and_retry_after_until_cleared(callback_receiver: CallbackReceiver) -> None:
    callback_receiver.respond_with(429, {"Retry-After": "7"})
    for _ in range(2):
        response = await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"

    callback_receiver.respond_with(None)
    response = await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY))
    assert response.status_code == 200


async def test_delay_next_provokes_a_client_timeout_not_counted_as_accepted(
    callback_receiver: CallbackReceiver,
) -> None:
    callback_receiver.delay_next(1, seconds=2.0)

    with pytest.raises(httpx.ReadTimeout):
        await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY), timeout_s=0.3)
    [timed_out] = await callback_receiver.wait_for_requests(1, timeout_s=3)
    assert timed_out.client_disconnected
    assert not timed_out.accepted

    started = time.monotonic()
    response = await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY))
    assert response.status_code == 200
    assert time.monotonic() - started < 1
    assert len(await callback_receiver.wait_for(1, timeout_s=1)) == 1


async def test_delay_next_answers_after_the_delay_when_the_client_waits(
    callback_receiver: CallbackReceiver,
) -> None:
    callback_receiver.delay_next(1, seconds=0.3)

    started = time.monotonic()
    response = await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY))

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3
    assert len(callback_receiver.accepted) == 1


async def test_set_down_refuses_connections_and_set_up_reuses_the_url(
    callback_receiver: CallbackReceiver,
) -> None:
    url = callback_receiver.url
    await callback_receiver.set_down(True)

    with pytest.raises(httpx.ConnectError):
        await post(url, BODY, signed_headers(callback_receiver.secret, BODY))

    await callback_receiver.set_down(False)
    assert callback_receiver.url == url
    assert (await post(url, BODY, signed_headers(callback_receiver.secret, BODY))).status_code == 200


async def test_wait_for_times_out_with_what_arrived(callback_receiver: CallbackReceiver) -> None:
    callback_receiver.fail_next(1)
    await post(callback_receiver.url, BODY, signed_headers(callback_receiver.secret, BODY))

    with pytest.raises(TimeoutError, match="500"):
        await callback_receiver.wait_for(1, timeout_s=0.2)


async def test_a_second_receiver_runs_independently(callback_receiver: CallbackReceiver) -> None:
    async with CallbackReceiver() as other:
        assert other.url != callback_receiver.url
        await post(other.url, BODY, signed_headers(other.secret, BODY))
        assert len(other.accepted) == 1
    assert callback_receiver.all_requests == []


async def test_set_down_releases_held_requests_with_503(callback_receiver: CallbackReceiver) -> None:
    callback_receiver.delay_next(1, seconds=30)
    url, headers = callback_receiver.url, signed_headers(callback_receiver.secret, BODY)

    async with asyncio.TaskGroup() as tg:
        held = tg.create_task(post(url, BODY, headers, timeout_s=10))
        await callback_receiver.wait_for_requests(0)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await callback_receiver.set_down(True)

    assert time.monotonic() - started < 2
    assert held.result().status_code == 503
    assert callback_receiver.accepted == []
