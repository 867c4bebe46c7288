"""The web pages of the browser tests, and a static server for them.

Both pages load the TypeScript client's browser bundle (clients/typescript, built at test time)
as an ES module from their own origin, and read the service's base URL from their query string.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from recorder_service.tools.asgi_server import serve_in_task

# Reflector's room page calls the service when its participant has joined the Daily call.
MEETING_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Meeting</title><link rel="icon" href="data:,"></head>
<body>
<h1>Meeting page</h1>
<p>Origin: <code id="origin"></code></p>
<pre id="outcomes">not joined yet</pre>
<script type="module">
import { RecorderClient } from "/recorder-client.js";
const params = new URLSearchParams(location.search);
const recorder = new RecorderClient({ baseUrl: params.get("recorder"), maxWaitMs: 20000 });
document.getElementById("origin").textContent = location.origin;
window.onJoinedMeeting = async (meetingId) => {
  document.getElementById("outcomes").textContent = "starting recordings...";
  const outcomes = await recorder.startRecordings(meetingId, { types: ["raw-tracks", "cloud"] });
  console.log("start outcomes: " + JSON.stringify(outcomes));
  document.getElementById("outcomes").textContent = JSON.stringify(outcomes, null, 2);
  return outcomes;
};
window.clientLoaded = true;
</script>
</body></html>
"""

# Reflector's transcript page plays the cloud recording through the service's playback URL.
TRANSCRIPT_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Transcript</title><link rel="icon" href="data:,"></head>
<body>
<h1>Transcript page</h1>
<video id="player" muted playsinline controls width="320" height="240"></video>
<pre id="state"></pre>
<script type="module">
import { RecorderClient } from "/recorder-client.js";
const params = new URLSearchParams(location.search);
const recorder = new RecorderClient({ baseUrl: params.get("recorder") });
const player = document.getElementById("player");
const state = document.getElementById("state");
player.addEventListener("timeupdate", () => {
  state.textContent = `readyState ${player.readyState}, duration ${player.duration} s, currentTime ${player.currentTime.toFixed(2)} s`;
});
player.addEventListener("error", () => {
  console.error("media error " + player.error.code + ": " + player.error.message);
});
player.src = recorder.cloudRecordingUrl(params.get("meeting"), params.get("token"));
// Muted: autoplay policy lets a muted video play without a user gesture.
player.play().catch((e) => console.error("play() failed: " + e));
window.clientLoaded = true;
</script>
</body></html>
"""

Send = Callable[[dict[str, Any]], Awaitable[None]]


def static_app(files: Mapping[str, tuple[str, bytes]]) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app serving `files` ({path: (content type, body)}) to GET, else 404."""

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        found = files.get(scope["path"]) if scope["method"] in ("GET", "HEAD") else None
        status, content_type, body = (200, *found) if found else (404, "text/plain", b"not found")
        headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@contextlib.asynccontextmanager
async def serve_pages(client_bundle: bytes) -> AsyncIterator[str]:
    """Serves both pages and the client bundle; yields the origin, `http://localhost:<port>`.

    The server listens on 127.0.0.1 like the service, but a page addressed as `localhost` has
    another origin than the service's `http://127.0.0.1:<port>`: every call to it is cross-origin.
    """
    files = {
        "/meeting.html": ("text/html; charset=utf-8", MEETING_PAGE),
        "/transcript.html": ("text/html; charset=utf-8", TRANSCRIPT_PAGE),
        "/recorder-client.js": ("text/javascript; charset=utf-8", client_bundle),
    }
    async with serve_in_task(static_app(files)) as url:
        yield url.replace("//127.0.0.1:", "//localhost:")
