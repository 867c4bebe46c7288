"""HTTP delivery of one signed callback attempt to Reflector (Standard Webhooks).

Sent with aiohttp, not httpx (the service's client elsewhere): one POST per applied event is the
outbox's hot path, and on this path httpx's client cost 0.77 ms of CPU per POST alone and 1.29 ms
at 16 in flight, aiohttp's 0.15 and 0.13 ms (issue 18, docs/performance.md). aiohttp is already
loaded for S3 (aiobotocore sends through it), so this adds no dependency and no memory."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request

import aiohttp
import msgspec

from recorder_service.adapters.retry_after import parse_retry_after
from recorder_service.core.callbacks import CallbackSigner

# Of a refused attempt's answer, this much is read for its error text (the rest is dropped).
_SNIPPET_BYTES = 2048


class AttemptResult(msgspec.Struct, frozen=True):
    delivered: bool
    status_code: int | None
    error: str | None
    retry_after_s: float | None
    duration_ms: int


def callback_session(timeout_s: float) -> aiohttp.ClientSession:
    """The connection pool for callbacks; `timeout_s` bounds one whole attempt. Not
    `trust_env`: aiohttp would then look for a netrc file (in a thread) and re-read the proxy
    variables on every request, 12 % of the service's CPU in a burst; CallbackSender reads the
    proxy once instead."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY / HTTPS_PROXY, minus NO_PROXY), as
    the service's other HTTP clients follow it; None to connect directly."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class CallbackSender:
    def __init__(self, http: aiohttp.ClientSession, url: str, signer: CallbackSigner) -> None:
        self._http = http
        self._url = url
        self._signer = signer
        self._proxy = env_proxy(url)  # read once: the environment does not change under a process

    async def send(self, msg_id: str, body: bytes, *, traceparent: str | None) -> AttemptResult:
        # The id is kept across retries (receivers deduplicate on it); the timestamp is
        # fresh per attempt because receivers reject stale ones.
        headers = self._signer.sign(msg_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        if traceparent:
            headers["traceparent"] = traceparent
        started = time.monotonic()
        try:
            # Only a 2xx counts as delivered; redirects are not followed.
            async with self._http.post(
                self._url, data=body, headers=headers, allow_redirects=False, proxy=self._proxy
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    return AttemptResult(True, status, None, None, _ms_since(started))
                snippet = (await response.content.read(_SNIPPET_BYTES)).decode("utf-8", "replace")
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            return AttemptResult(False, None, f"timeout ({type(exc).__name__})", None, _ms_since(started))
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            return AttemptResult(False, None, f"unreachable ({type(exc).__name__})", None, _ms_since(started))
        return AttemptResult(
            False,
            status,
            f"HTTP {status}: {snippet[:200].replace(chr(10), ' ')}",
            parse_retry_after(retry_after),
            _ms_since(started),
        )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
