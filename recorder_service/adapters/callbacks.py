"""HTTP delivery of one signed callback attempt to Reflector (Standard Webhooks)."""

from __future__ import annotations

import time

import httpx
import msgspec

from recorder_service.adapters.retry_after import parse_retry_after
from recorder_service.core.callbacks import CallbackSigner


class AttemptResult(msgspec.Struct, frozen=True):
    delivered: bool
    status_code: int | None
    error: str | None
    retry_after_s: float | None
    duration_ms: int


class CallbackSender:
    def __init__(self, http: httpx.AsyncClient, url: str, signer: CallbackSigner) -> None:
        self._http = http
        self._url = url
        self._signer = signer

    async def send(self, msg_id: str, body: bytes, *, traceparent: str | None) -> AttemptResult:
        # The id is kept across retries (receivers deduplicate on it); the timestamp is
        # fresh per attempt because receivers reject stale ones.
        headers = self._signer.sign(msg_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        if traceparent:
            headers["traceparent"] = traceparent
        started = time.monotonic()
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return AttemptResult(
                False, None, f"timeout ({type(exc).__name__})", None, int((time.monotonic() - started) * 1000)
            )
        except httpx.HTTPError as exc:
            return AttemptResult(
                False,
                None,
                f"unreachable ({type(exc).__name__})",
                None,
                int((time.monotonic() - started) * 1000),
            )
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if response.is_success:  # only 2xx counts; redirects are not followed
            return AttemptResult(True, response.status_code, None, None, elapsed_ms)
        snippet = response.text[:200].replace("\n", " ")
        return AttemptResult(
            False,
            response.status_code,
            f"HTTP {response.status_code}: {snippet}",
            parse_retry_after(response.headers.get("retry-after")),
            elapsed_ms,
        )
