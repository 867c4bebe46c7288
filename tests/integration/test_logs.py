"""Logs: JSON lines carry the trace context, and no secret or signed URL is ever written."""

from __future__ import annotations

import io
import json
import logging
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from recorder_service.logs import _QUIET_LOGGERS, setup_logging
from recorder_service.settings import Settings, load_settings
from recorder_service.tools.simulator import SimulatorConfig
from tests.integration.test_callbacks import raw_tracks_ready
from tests.integration.test_start import ROOM as START_ROOM
from tests.integration.test_start import register as register_start_meeting
from tests.integration.test_start import start
from tests.integration.test_telemetry import traced_service
from tests.integration.test_webhooks import ROOM, T0
from tests.integration.test_webhooks import register as register_webhook_meeting
from tests.plugins.receiver import CallbackReceiver
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import AUTH, INTERNAL_KEY, PLAYBACK_SECRET, WEBHOOK_SECRET, playback, service_env
from tests.plugins.simulator import DailySimFactory
from tests.support.privacy import wait_deleted_callbacks
from tests.support.webhooks import envelope, post_webhook, ready_payload

DAILY_API_KEY = "daily-api-key-5f0c2e9b7d41"


@pytest.fixture
def captured_logs() -> Iterator[tuple[io.StringIO, list[Settings]]]:
    """Installs the service's own logging (JSON, given level) writing into a buffer, and
    restores the process's logging afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in _QUIET_LOGGERS})
    buffer = io.StringIO()
    installed: list[Settings] = []
    yield buffer, installed
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def install(buffer: io.StringIO, settings: Settings) -> None:
    setup_logging(settings)
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)


def test_json_lines_carry_the_active_trace_and_span_ids(
    captured_logs: tuple[io.StringIO, list[Settings]],
) -> None:
    buffer, _ = captured_logs
    install(buffer, Settings(log_format="json", log_level="INFO"))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("recorder_service.test").info("inside")
    logging.getLogger("recorder_service.test").info("outside")
    inside, outside = (json.loads(line) for line in buffer.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


def test_secret_values_are_redacted_if_a_message_ever_carries_one(
    captured_logs: tuple[io.StringIO, list[Settings]],
) -> None:
    buffer, _ = captured_logs
    settings = load_settings(service_env("sqlite+aiosqlite:///x.db", RECORDER_LOG_FORMAT="json"))
    install(buffer, settings)
    log = logging.getLogger("recorder_service.test")
    log.warning("key %s", INTERNAL_KEY)
    log.warning("url https://s3/b/k?X-Amz-Credential=AKIA%%2F&X-Amz-Signature=abcdef0123")
    log.warning("header Authorization: Bearer tok.en-123")
    text = buffer.getvalue()
    assert INTERNAL_KEY not in text
    assert "abcdef0123" not in text
    assert "AKIA" not in text
    assert "tok.en-123" not in text
    assert text.count("[redacted]") == 4


async def test_a_whole_flow_at_debug_logs_no_secret_key_or_signature(
    postgres_db_url: str,
    daily_sim_factory: DailySimFactory,
    s3: S3Bucket,
    callback_receiver: CallbackReceiver,
    captured_logs: tuple[io.StringIO, list[Settings]],
) -> None:
    buffer, _ = captured_logs
    daily_sim = await daily_sim_factory(SimulatorConfig(api_key=DAILY_API_KEY))
    env = service_env(
        postgres_db_url,
        daily_sim.base_url,
        RECORDER_DAILY_API_KEY=DAILY_API_KEY,
        RECORDER_S3_BUCKET=s3.bucket,
        RECORDER_S3_ENDPOINT_URL=s3.endpoint_url,
        RECORDER_S3_REGION=s3.region,
        RECORDER_CALLBACK_URL=callback_receiver.url,
        RECORDER_CALLBACK_SECRET=callback_receiver.secret,
        RECORDER_BACKGROUND="true",
        RECORDER_RECONCILE_INTERVAL_SECONDS="3600",
        RECORDER_LOG_FORMAT="json",
        RECORDER_LOG_LEVEL="DEBUG",
    )
    install(buffer, load_settings(env))
    key = "acme/standup-7f3a9c/1767260345412"
    await s3.put(key, b"\x00\x00\x00\x18ftypmp42")
    async with traced_service(env) as t:
        svc = t.svc
        # Start (Daily called with the API key) ...
        await register_start_meeting(svc)
        await daily_sim.join(START_ROOM)
        assert (await start(svc)).status_code == 200
        # ... webhooks (signed with the webhook secret), one badly signed ...
        await register_webhook_meeting(svc, "m-1")
        payload = ready_payload(room=ROOM, start_ts=T0.timestamp() + 60, s3_key=key)
        r = await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
        assert r.json()["state"] == "applied", r.text
        bad = await post_webhook(svc.client, envelope("recording.started", {}), secret="c2VjcmV0")
        assert bad.status_code == 401
        # ... a callback (signed with the callback secret) ...
        await raw_tracks_ready(svc.client)
        [delivery] = await callback_receiver.wait_for(1, timeout_s=5)
        # ... playback (a presigned URL), and internal calls with right and wrong keys.
        r = await svc.client.get("/v1/meetings/m-1/cloud-recording", params=playback("m-1"))
        assert r.status_code == 307
        location = r.headers["location"]
        async with httpx.AsyncClient() as plain:
            assert (await plain.get(location)).status_code == 200
        wrong = await svc.client.get("/v1/callbacks", headers={"Authorization": "Bearer nope-wrong-key"})
        assert wrong.status_code == 401
        # ... a playback link (a fresh token), refused tokens, and a deletion (logged with its reason).
        token = playback("m-1")["token"]
        assert (
            await svc.client.get("/v1/meetings/m-1/cloud-recording", params={"token": token + "x"})
        ).status_code == 403
        link = (await svc.client.get("/v1/meetings/m-1/cloud-recording/link", headers=AUTH)).json()
        link_token = urllib.parse.parse_qs(urllib.parse.urlsplit(link["playback_url"]).query)["token"][0]
        assert (await svc.client.delete("/v1/meetings/m-1/recordings", headers=AUTH)).status_code == 202
        await wait_deleted_callbacks(callback_receiver, 2)
    # werkzeug is the test's own S3 server (moto, in this process), not the service.
    text = "\n".join(
        line for line in buffer.getvalue().splitlines() if json.loads(line)["logger"] != "werkzeug"
    )
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert '"logger": "recorder_service.workers.outbox"' in text  # the capture saw the service
    assert '"trace_id": ' in text  # and lines written inside requests carry their trace
    signature = location.split("X-Amz-Signature=")[1].split("&")[0]
    callback_signature = (delivery.webhook_signature or "").removeprefix("v1,")
    for secret in (
        INTERNAL_KEY,
        WEBHOOK_SECRET,
        callback_receiver.secret,
        callback_receiver.secret.removeprefix("whsec_"),
        DAILY_API_KEY,
        "X-Amz-Signature",
        signature,
        callback_signature,
        PLAYBACK_SECRET,
        token.split(".")[1],
        link_token.split(".")[1],
        link["url"].split("X-Amz-Signature=")[1].split("&")[0],
    ):
        assert secret and secret not in text, secret
    # Every deletion is logged with its meeting, recording and reason.
    entries = [json.loads(line) for line in text.splitlines()]
    assert any(
        "deleted" in e["msg"]
        and e.get("reason") == "request"
        and e.get("meeting_id") == "m-1"
        and e.get("recording_id")
        for e in entries
    )
    assert "[redacted]" not in text  # nothing even tried to log one
