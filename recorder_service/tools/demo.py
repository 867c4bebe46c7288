"""`recorder-service demo`: one meeting played through the whole service on embedded defaults
(SQLite, in-process locks) with a simulated Daily, a local S3-compatible server and a local
Reflector callback receiver that verifies signatures. Everything talks over loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
from litestar import Litestar, Request, post

from recorder_service.adapters.daily.client import DailyClient
from recorder_service.adapters.db.migrate import upgrade_async
from recorder_service.app import create_app
from recorder_service.client import (
    CallbackEvent,
    DailyEventCallback,
    InvalidCallbackSignature,
    RecorderClient,
    RecordingDeletedEvent,
    verify_callback,
)
from recorder_service.settings import load_settings
from recorder_service.tools.asgi_server import serve_in_task
from recorder_service.tools.simulator import SimulatorConfig, create_simulator_app

BUCKET = "demo-recordings"
ROOM = f"demo-room-{datetime.now(UTC):%Y%m%d%H%M%S}"


class DemoFailed(Exception):
    pass


class Timeline:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()
        self.rows: list[tuple[str, str, float]] = []

    def say(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.started:6.2f}s] {text}", file=self.out, flush=True)

    async def step(self, name: str, action: Callable[[], Awaitable[str]]) -> None:
        print(f"  [{time.monotonic() - self.started:6.2f}s] ▶ {name}", file=self.out, flush=True)
        began = time.monotonic()
        try:
            result = await action()
        except Exception as exc:
            self.rows.append((name, f"FAILED: {exc}", time.monotonic() - began))
            raise DemoFailed(f"{name}: {exc}") from exc
        self.rows.append((name, result, time.monotonic() - began))
        self.say(f"  ✓ {result}")

    def summary(self) -> None:
        width = max(len(n) for n, _, _ in self.rows)
        print("\nSummary", file=self.out)
        print(f"  {'step'.ljust(width)}  {'time':>6}  result", file=self.out)
        for name, result, seconds in self.rows:
            print(f"  {name.ljust(width)}  {seconds:5.2f}s  {result}", file=self.out)


class CallbackInbox:
    """Reflector's side: verifies every callback's Standard Webhooks signature."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.events: list[CallbackEvent | RecordingDeletedEvent | DailyEventCallback] = []
        self.arrived = asyncio.Event()

    def app(self) -> Litestar:
        @post("/callbacks", status_code=204)
        async def receive(request: Request[Any, Any, Any]) -> None:
            body = await request.body()
            try:
                event = verify_callback(dict(request.headers), body, self.secret)
            except InvalidCallbackSignature as exc:
                raise DemoFailed(f"callback signature rejected: {exc}") from exc
            self.events.append(event)
            self.arrived.set()

        return Litestar([receive], logging_config=None)


@contextlib.contextmanager
def s3_server() -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto is a development dependency
        raise DemoFailed(
            "the demo's local S3 server needs moto: run it with `uv run` from the repository"
        ) from exc
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def _create_bucket(endpoint: str) -> None:
    import aioboto3

    async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=BUCKET)


async def _bucket_keys(endpoint: str) -> list[str]:
    import aioboto3

    async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3:
        listed = await s3.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listed.get("Contents", []) if "Key" in item]


@contextlib.asynccontextmanager
async def _stack(workdir: Path, timeline: Timeline) -> AsyncIterator[dict[str, Any]]:
    webhook_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    callback_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    internal_key = secrets.token_urlsafe(24)
    playback_secret = secrets.token_urlsafe(32)
    inbox = CallbackInbox(callback_secret)
    with s3_server() as s3_endpoint:
        await _create_bucket(s3_endpoint)
        sim_config = SimulatorConfig(
            api_key="demo-key", hosting_delay_s=0.5, s3_endpoint_url=s3_endpoint, s3_bucket=BUCKET
        )
        async with (
            serve_in_task(create_simulator_app(sim_config)) as sim_url,
            serve_in_task(inbox.app()) as receiver_url,
        ):
            database_url = f"sqlite+aiosqlite:///{workdir / 'recorder.db'}"
            await upgrade_async(database_url)
            settings = load_settings(
                {
                    "RECORDER_DATABASE_URL": database_url,
                    "RECORDER_DAILY_API_URL": f"{sim_url}/v1",
                    "RECORDER_DAILY_API_KEY": "demo-key",
                    "RECORDER_DAILY_WEBHOOK_SECRETS": webhook_secret,
                    "RECORDER_S3_BUCKET": BUCKET,
                    "RECORDER_S3_ENDPOINT_URL": s3_endpoint,
                    "RECORDER_CALLBACK_URL": f"{receiver_url}/callbacks",
                    "RECORDER_CALLBACK_SECRET": callback_secret,
                    "RECORDER_INTERNAL_API_KEY": internal_key,
                    "RECORDER_PLAYBACK_SECRET": playback_secret,
                    "RECORDER_START_NOT_HOSTING_DELAY_SECONDS": "0.25",
                    "RECORDER_DELETION_POLL_SECONDS": "0.5",
                }
            )
            async with serve_in_task(create_app(settings)) as service_url:
                timeline.say(
                    f"service {service_url}, Daily simulator {sim_url}, S3 {s3_endpoint}, "
                    f"Reflector receiver {receiver_url}"
                )
                yield {
                    "service": service_url,
                    "sim": sim_url,
                    "inbox": inbox,
                    "key": internal_key,
                    "playback_secret": playback_secret,
                    "webhook_secret": webhook_secret,
                    "s3": s3_endpoint,
                }


def _quiet_logs() -> None:
    """The timeline is the demo's output. moto's access log would print presigned URLs in full."""
    logging.basicConfig(level=logging.WARNING, force=True, format="  %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "httpx", "httpcore", "botocore", "aiobotocore", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # The service warns that it runs without Redis; in the demo that is the point.
    logging.getLogger("recorder_service.resources").setLevel(logging.ERROR)


async def play(out: TextIO, *, keep_running: bool) -> int:
    _quiet_logs()
    timeline = Timeline(out)
    print("recorder-service demo: one meeting, start to playback and deletion\n", file=out)
    meeting_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory(prefix="recorder-demo-") as tmp:
        try:
            async with (
                _stack(Path(tmp), timeline) as env,
                httpx.AsyncClient(timeout=30) as http,
                RecorderClient(
                    env["service"], env["key"], playback_secret=env["playback_secret"]
                ) as reflector,
            ):
                await _scenario(timeline, env, http, reflector, meeting_id)
                timeline.summary()
                print("\nDemo succeeded.", file=out)
                if keep_running:
                    print(
                        f"\nService still running: OpenAPI docs at {env['service']}/schema "
                        f"(internal key: {env['key']}). Ctrl-C to stop.",
                        file=out,
                        flush=True,
                    )
                    await asyncio.Event().wait()
            return 0
        except DemoFailed as exc:
            timeline.summary()
            print(f"\nDemo FAILED at step {exc}", file=sys.stderr)
            return 1


async def _scenario(
    t: Timeline, env: dict[str, Any], http: httpx.AsyncClient, reflector: RecorderClient, meeting_id: str
) -> None:
    service, sim = env["service"], env["sim"]
    inbox: CallbackInbox = env["inbox"]

    async def webhook() -> str:
        async with DailyClient.build_http(f"{sim}/v1", "demo-key", 10) as daily_http:
            hook = await DailyClient(daily_http).create_webhook(
                f"{service}/v1/daily/webhook", hmac_secret=env["webhook_secret"], retry_type="exponential"
            )
        return f"Daily webhook {hook.uuid[:8]} verified the service and is {hook.state}"

    async def register() -> str:
        now = datetime.now(UTC)
        m = await reflector.register_meeting(
            meeting_id,
            room_name=ROOM,
            recording_type="cloud",
            start_date=now,
            end_date=now + timedelta(hours=1),
        )
        return f"meeting {meeting_id[:8]}… registered (created={m.created}) for room {ROOM}"

    async def join_and_start() -> str:
        await asyncio.gather(
            *(http.post(f"{sim}/_sim/rooms/{ROOM}/join", json={"user_name": n}) for n in ("alice", "bob"))
        )
        calls = [
            http.post(f"{service}/v1/meetings/{meeting_id}/recordings/start", json={"type": kind})
            for kind in ("raw-tracks", "cloud")
            for _browser in ("alice", "bob")
        ]
        answers = await asyncio.gather(*calls)
        statuses = [(a.status_code, a.json().get("status")) for a in answers]
        if any(code != 200 for code, _ in statuses):
            raise DemoFailed(f"start answers {statuses}")
        starts = (await http.get(f"{sim}/_sim/calls")).json()["starts"]
        counts = {s["type"]: s["count"] for s in starts}
        if counts != {"raw-tracks": 1, "cloud": 1}:
            raise DemoFailed(f"Daily received starts {counts}, expected one of each")
        return (
            f"4 start calls ({sorted(s for _, s in statuses)}) → Daily got exactly one start "
            f"per type (raw-tracks instance {answers[0].json()['instanceId'][:8]}…)"
        )

    async def talk_and_end() -> str:
        await asyncio.sleep(2.0)
        await http.post(f"{sim}/_sim/rooms/{ROOM}/end")
        return "both participants left after ~2 s; Daily finishes the recordings"

    async def ready() -> str:
        for _ in range(200):
            m = await reflector.get_recordings(meeting_id)
            if len(m.recordings) == 2 and all(r.status == "ready" for r in m.recordings):
                tracks = next(r for r in m.recordings if r.type == "raw-tracks").tracks
                return (
                    f"webhooks applied: cloud ready ({m.cloud_recording_duration} s), "
                    f"raw-tracks ready ({len(tracks)} track files)"
                )
            await asyncio.sleep(0.05)
        raise DemoFailed("recordings did not become ready")

    async def callback() -> str:
        await asyncio.wait_for(inbox.arrived.wait(), timeout=15)
        for _ in range(100):
            if any(e.type == "recording.raw_tracks_ready" for e in inbox.events):
                break
            await asyncio.sleep(0.05)
        raw = next(
            (
                e
                for e in inbox.events
                if isinstance(e, CallbackEvent) and e.type == "recording.raw_tracks_ready"
            ),
            None,
        )
        if raw is None:
            raise DemoFailed("no recording.raw_tracks_ready callback arrived")
        return (
            f"Reflector received a verified recording.raw_tracks_ready with "
            f"{len(raw.data.track_keys or ())} audio tracks (bucket {raw.data.bucket})"
        )

    async def playback() -> str:
        anonymous = await http.get(f"{service}/v1/meetings/{meeting_id}/cloud-recording")
        if anonymous.status_code != 401:
            raise DemoFailed(f"anonymous playback answered {anonymous.status_code}, not 401")
        # What Reflector puts in the page's <video> after its own access check: a 5-minute token.
        redirect = await http.get(reflector.playback_url(meeting_id, ttl_s=300))
        if redirect.status_code != 307:
            raise DemoFailed(f"playback answered {redirect.status_code}")
        media = await http.get(redirect.headers["location"])
        if media.status_code != 200 or not media.content:
            raise DemoFailed(f"S3 answered {media.status_code}")
        link = await reflector.cloud_recording_link(meeting_id)
        return (
            f"anonymous 401; with a playback token 307 → presigned URL → {len(media.content)} bytes, "
            f"{media.headers.get('content-type')}, {media.headers.get('content-disposition')}; "
            f"link endpoint: {link.content_type}, {link.duration} s, until {link.expires_at:%H:%M:%S}Z"
        )

    async def delete() -> str:
        before = await _bucket_keys(env["s3"])
        deleted = await reflector.delete_recordings(meeting_id)
        gone = await http.get(reflector.playback_url(meeting_id, ttl_s=300))
        if gone.status_code != 404:
            raise DemoFailed(f"playback after deletion answered {gone.status_code}, not 404")
        for _ in range(300):
            announced = [e for e in inbox.events if isinstance(e, RecordingDeletedEvent)]
            if len(announced) == len(deleted):
                break
            await asyncio.sleep(0.05)
        else:
            raise DemoFailed(f"{len(deleted)} recording.deleted callbacks expected, got {len(announced)}")
        after = await _bucket_keys(env["s3"])
        if after:
            raise DemoFailed(f"objects left in the bucket: {after}")
        return (
            f"{len(deleted)} recordings deleted: playback 404 at once, {len(before)} objects removed "
            f"from the bucket (listed: 0 left), {len(announced)} verified recording.deleted callbacks"
        )

    await t.step("create Daily webhook", webhook)
    await t.step("register meeting", register)
    await t.step("two participants join, both browsers start", join_and_start)
    await t.step("talk, then leave", talk_and_end)
    await t.step("Daily webhooks arrive", ready)
    await t.step("raw-tracks callback to Reflector", callback)
    await t.step("play the cloud recording", playback)
    await t.step("delete the meeting's recordings", delete)
