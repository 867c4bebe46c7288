"""A real browser (Debian's Chromium, headless, driven by Playwright) runs the TypeScript client
against the service over loopback HTTP, across origins:

- a page of a foreign origin tries to start recordings: the CORS preflight is refused, so its
  start never reaches the service;
- the meeting page (the origin in RECORDER_CORS_ORIGINS) starts raw-tracks and cloud when its
  participant joins, honouring the 409 + Retry-After the service answers until the simulated
  Daily sees the call;
- the simulator ends the meeting and delivers its webhooks; the cloud recording's S3 object is
  replaced by a real H.264/AAC MP4;
- the transcript page plays it in a <video> through GET /v1/meetings/{id}/cloud-recording
  (307 to a presigned URL of the moto S3 server, which sends no CORS headers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, Page, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from recorder_service.tools.simulator import SimulatorConfig
from tests.browser.conftest import VIDEO_SECONDS, Artifacts
from tests.browser.pages import serve_pages
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import AUTH, WEBHOOK_SECRET, RunningService, ServiceFactory, service_env
from tests.plugins.simulator import DailySimFactory
from tests.support.webhooks import envelope, post_webhook, ready_payload

MEETING_ID = "0f7c2b5e-3c1d-4e8a-9b6f-2d4c8e1a7b90"
ROOM = "browser-standup"
TYPES = ["raw-tracks", "cloud"]
# Contract §1: cloud uses the meeting id itself when it is a UUID.
INSTANCE_IDS = {
    "raw-tracks": str(uuid.uuid5(uuid.UUID("a1b2c3d4-e5f6-7890-abcd-ef1234567890"), MEETING_ID)),
    "cloud": MEETING_ID,
}
PLAYBACK_SECRET = "browser-test-playback-secret-0123456789abcdef"
# What a corrupt upload looks like to a browser: an MP4 header and nothing playable (the
# simulator writes such placeholders where Daily writes the recording).
CORRUPT_MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 4096


def playback_token(meeting_id: str, secret: str, expires_at: int) -> str:
    """Contract §4: `<exp>.<sig>`, sig the unpadded base64url HMAC-SHA256 of "<meeting_id>.<exp>"."""
    digest = hmac.new(secret.encode(), f"{meeting_id}.{expires_at}".encode(), hashlib.sha256).digest()
    return f"{expires_at}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


@dataclass
class Exchange:
    kind: str  # Playwright's resource type ("fetch", "media", …), or "preflight"
    method: str
    url: str
    status: int
    headers: dict[str, str]  # response headers, lower-case names
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str | None = None

    @property
    def recording_type(self) -> str | None:
        return str(json.loads(self.request_body)["type"]) if self.request_body else None


@dataclass
class OpenPage:
    page: Page
    exchanges: list[Exchange]
    failed_requests: list[str]

    def posts(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST"]

    def preflights(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == "preflight"]


async def open_page(browser: Browser, artifacts: Artifacts, label: str, url: str) -> OpenPage:
    """A page in a context of its own (no preflight or media cache shared with other pages),
    recording every response, including CORS preflights (seen only through CDP)."""
    context = await browser.new_context(viewport={"width": 900, "height": 700})
    page = await context.new_page()
    artifacts.watch(page, label)
    opened = OpenPage(page, [], [])

    def on_response(response: Response) -> None:
        request = response.request
        opened.exchanges.append(
            Exchange(
                request.resource_type,
                request.method,
                response.url,
                response.status,
                response.headers,
                request.headers,
                request.post_data,
            )
        )

    def on_preflight(event: dict[str, Any]) -> None:
        if event.get("type") == "Preflight":
            answer = event["response"]
            headers = {k.lower(): v for k, v in answer["headers"].items()}
            opened.exchanges.append(
                Exchange("preflight", "OPTIONS", answer["url"], answer["status"], headers)
            )

    page.on("response", on_response)
    page.on("requestfailed", lambda request: opened.failed_requests.append(f"{request.method} {request.url}"))
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    cdp.on("Network.responseReceived", on_preflight)
    await page.goto(url)
    await page.wait_for_function("() => window.clientLoaded === true")
    return opened


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


async def register_meeting(svc: RunningService) -> None:
    now = datetime.now(UTC)
    body = {
        "room_name": ROOM,
        "recording_type": "cloud",
        "start_date": (now - timedelta(minutes=5)).isoformat(),
        "end_date": (now + timedelta(hours=1)).isoformat(),
    }
    r = await svc.client.put(f"/v1/meetings/{MEETING_ID}", json=body, headers=AUTH)
    assert r.status_code == 201, r.text


async def meeting_recordings(svc: RunningService, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        r = await svc.client.get(f"/v1/meetings/{MEETING_ID}/recordings", headers=AUTH)
        meeting: dict[str, Any] = r.json()
        if until(meeting):
            return meeting
        if time.monotonic() > deadline:
            raise AssertionError(f"recordings never reached the expected state: {meeting}")
        await asyncio.sleep(0.1)


PLAYER_STATE = """() => {
  const v = document.getElementById("player");
  return {
    readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,
    paused: v.paused, ended: v.ended, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
    error: v.error && { code: v.error.code, message: v.error.message },
  };
}"""


async def assert_plays(page: Page) -> dict[str, Any]:
    """The transcript page's <video> loads the recording and plays it to its end."""
    player = 'document.getElementById("player")'
    try:
        await page.wait_for_function(
            f"() => {player}.error !== null || ({player}.readyState === 4 && {player}.currentTime > 0)",
            timeout=20_000,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"the video did not start playing: {await page.evaluate(PLAYER_STATE)}"
        ) from None
    first: dict[str, Any] = await page.evaluate(PLAYER_STATE)
    assert first["error"] is None, f"media error: {first}"
    # HAVE_ENOUGH_DATA, the file's real length and picture size: the media was really read.
    assert first["readyState"] == 4, first
    assert abs(first["duration"] - VIDEO_SECONDS) < 0.25, first
    assert (first["videoWidth"], first["videoHeight"]) == (320, 240), first
    # To the end: a truncated file starts playing too (its index comes first) but stalls.
    try:
        await page.wait_for_function(f"() => {player}.error !== null || {player}.ended", timeout=20_000)
    except PlaywrightTimeoutError:
        raise AssertionError(f"playback did not reach the end: {await page.evaluate(PLAYER_STATE)}") from None
    last: dict[str, Any] = await page.evaluate(PLAYER_STATE)
    assert last["error"] is None, f"media error: {last}"
    assert last["currentTime"] > first["currentTime"], (first, last)
    assert abs(last["currentTime"] - last["duration"]) < 0.1, last
    return last


def transcript_url(page_origin: str, svc: RunningService) -> str:
    token = playback_token(MEETING_ID, PLAYBACK_SECRET, int(time.time()) + 600)
    query = urlencode({"recorder": svc.url, "meeting": MEETING_ID, "token": token})
    return f"{page_origin}/transcript.html?{query}"


def browser_service_env(db_url: str, s3: S3Bucket, daily_url: str, page_origin: str) -> dict[str, str]:
    return service_env(
        db_url,
        daily_url,
        RECORDER_S3_BUCKET=s3.bucket,
        RECORDER_S3_ENDPOINT_URL=s3.endpoint_url,
        RECORDER_S3_REGION=s3.region,
        RECORDER_CORS_ORIGINS=page_origin,
        # Server-side cloud starts (the default now), stated since this test is about them.
        RECORDER_CLOUD_START="server",
        # Playback tokens: the test mints them as Reflector would (contract §4).
        RECORDER_PLAYBACK_SECRET=PLAYBACK_SECRET,
    )


async def test_meeting_page_starts_both_recordings_and_transcript_page_plays_the_cloud_one(
    postgres_db_url: str,
    s3: S3Bucket,
    daily_sim_factory: DailySimFactory,
    service_factory: ServiceFactory,
    browser: Browser,
    client_bundle: bytes,
    h264_aac_mp4: bytes,
    artifacts: Artifacts,
) -> None:
    sim = await daily_sim_factory(
        SimulatorConfig(
            api_key="sim-key", s3_endpoint_url=s3.endpoint_url, s3_bucket=s3.bucket, s3_region=s3.region
        )
    )
    async with serve_pages(client_bundle) as page_origin, serve_pages(client_bundle) as foreign_origin:
        env = browser_service_env(postgres_db_url, s3, sim.base_url, page_origin)
        async with service_factory(env) as svc:
            await sim.create_webhook(f"{svc.url}/v1/daily/webhook", WEBHOOK_SECRET)
            await register_meeting(svc)
            meeting_query = urlencode({"recorder": svc.url})

            # A page of another origin: its preflight gets no Access-Control-Allow-Origin, so
            # the browser never sends the start itself.
            foreign = await open_page(
                browser, artifacts, "foreign", f"{foreign_origin}/meeting.html?{meeting_query}"
            )
            outcomes = await foreign.page.evaluate("(m) => window.onJoinedMeeting(m)", MEETING_ID)
            await artifacts.screenshot(foreign.page, "foreign-origin-refused")
            assert outcomes == [
                {"type": t, "ok": False, "status": "failed", "detail": "no answer: Failed to fetch"}
                for t in TYPES
            ]
            # (CDP and console events may trail the page's own result by a moment.)
            await eventually(lambda: bool(foreign.preflights()), "the foreign page's preflight recorded")
            await eventually(
                lambda: any("blocked by CORS policy" in line for line in artifacts.console_of("foreign")),
                "the browser's CORS error in the foreign page's console",
            )
            assert all("access-control-allow-origin" not in e.headers for e in foreign.preflights())
            assert foreign.posts() == []
            assert (await sim.calls())["starts"] == []
            nothing = await meeting_recordings(svc, lambda m: True)
            assert nothing["recordings"] == []

            # The meeting page: its participant has joined, but Daily does not see the call yet.
            meeting = await open_page(
                browser, artifacts, "meeting", f"{page_origin}/meeting.html?{meeting_query}"
            )
            starting = asyncio.create_task(
                meeting.page.evaluate("(m) => window.onJoinedMeeting(m)", MEETING_ID)
            )
            await eventually(
                lambda: {e.recording_type for e in meeting.posts() if e.status == 409} == set(TYPES),
                "a 409 (not hosting) answered to each type's start",
            )
            await sim.join(ROOM, "alice")
            outcomes = await starting
            await artifacts.screenshot(meeting.page, "meeting-started")
            assert outcomes == [
                {"type": t, "ok": True, "status": "started", "httpStatus": 200, "instanceId": INSTANCE_IDS[t]}
                for t in TYPES
            ]
            await eventually(
                lambda: {e.recording_type for e in meeting.posts() if e.status == 200} == set(TYPES),
                "each type's successful start recorded",
            )
            # A real preflight, allowed for this origin only, for a JSON POST.
            preflight = meeting.preflights()[0]
            assert preflight.headers["access-control-allow-origin"] == page_origin
            assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
            for kind in TYPES:
                posts = [e for e in meeting.posts() if e.recording_type == kind]
                # The 409 carried Retry-After, which the page could read (exposed by CORS): it
                # retried instead of reporting a refusal.
                assert posts[0].status == 409
                assert int(posts[0].headers["retry-after"]) >= 1
                assert "retry-after" in posts[0].headers["access-control-expose-headers"].lower()
                assert posts[-1].status == 200
                assert all(p.request_headers["content-type"] == "application/json" for p in posts)
            starts = (await sim.calls())["starts"]
            assert sorted((s["type"], s["instance_id"], s["count"]) for s in starts) == sorted(
                (t, INSTANCE_IDS[t], 1) for t in TYPES
            )

            # The meeting ends; Daily writes the files and sends its webhooks.
            await meeting_recordings(
                svc,
                lambda m: len(m["recordings"]) == 2 and all(r["daily_recording_id"] for r in m["recordings"]),
            )
            await asyncio.sleep(1.1)  # the simulator's recordings last at least a second
            await sim.end_meeting(ROOM)
            done = await meeting_recordings(
                svc,
                lambda m: (
                    m["cloud_recording_available"] and all(r["status"] == "ready" for r in m["recordings"])
                ),
            )
            cloud = next(r for r in done["recordings"] if r["type"] == "cloud")
            written = {r["id"]: r["s3key"] for r in await sim.recordings()}
            assert cloud["s3_key"] == written[cloud["daily_recording_id"]]
            # Daily's composite MP4: a real one replaces the simulator's placeholder bytes.
            await s3.put(cloud["s3_key"], h264_aac_mp4)

            transcript = await open_page(browser, artifacts, "transcript", transcript_url(page_origin, svc))
            await assert_plays(transcript.page)
            await artifacts.screenshot(transcript.page, "transcript-played")
            redirect = next(e for e in transcript.exchanges if "/cloud-recording" in e.url)
            assert redirect.url.startswith(f"{svc.url}/v1/meetings/{MEETING_ID}/cloud-recording?token=")
            assert redirect.status == 307
            assert redirect.headers["location"].startswith(f"{s3.endpoint_url}/{s3.bucket}/")
            media = [e for e in transcript.exchanges if e.url.startswith(s3.endpoint_url)]
            assert media, transcript.exchanges
            for e in media:
                assert e.kind == "media"
                assert e.status in (200, 206)
                assert e.headers["content-type"] == "video/mp4"
                assert "access-control-allow-origin" not in e.headers  # no moto CORS to lean on


@pytest.mark.parametrize("damage", ["placeholder", "truncated"])
async def test_playback_check_fails_when_the_recording_is_not_playable_media(
    damage: str,
    postgres_db_url: str,
    s3: S3Bucket,
    service_factory: ServiceFactory,
    browser: Browser,
    client_bundle: bytes,
    h264_aac_mp4: bytes,
    artifacts: Artifacts,
) -> None:
    """The other test's playback check fails for a file that is not playable media, and for a
    real one cut in half (which starts playing: its index comes first)."""
    media = CORRUPT_MP4 if damage == "placeholder" else h264_aac_mp4[: len(h264_aac_mp4) // 2]
    async with serve_pages(client_bundle) as page_origin:
        env = browser_service_env(postgres_db_url, s3, "http://127.0.0.1:9/v1", page_origin)
        async with service_factory(env) as svc:
            await register_meeting(svc)
            key = f"acme/{ROOM}/1767261600000"
            await s3.put(key, media)
            payload = ready_payload(room=ROOM, start_ts=time.time(), type_="cloud", duration=3, s3_key=key)
            r = await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
            assert r.json()["state"] == "applied", r.text
            transcript = await open_page(browser, artifacts, "transcript", transcript_url(page_origin, svc))
            with pytest.raises(AssertionError, match="media error"):
                await assert_plays(transcript.page)
            await artifacts.screenshot(transcript.page, "transcript-not-played")
            assert any("media error" in line for line in artifacts.console_of("transcript"))
