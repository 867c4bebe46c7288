"""Pytest fixtures: Reflector's callback receiver, a real HTTP server on 127.0.0.1.

`callback_receiver` (function) yields a running `CallbackReceiver`; build more with
`async with CallbackReceiver() as other:`. Every request is verified with the
`standardwebhooks` package and recorded as a `CallbackDelivery`.

Answers, first match wins:
- down (`await set_down(True)`): the port is closed, so connections are refused; not a 503.
  `set_down(False)` reopens the same port, so `url` stays valid.
- wrong path 404, wrong method 405, missing/bad signature 401 (never consumes a `fail_next`);
- the next queued `fail_next(n, status, headers)`;
- the standing `respond_with(status, headers)` (until `respond_with(None)`);
- 200, or 400 when a correctly signed body is not JSON.
`delay_next(n, seconds)` holds the next n requests (any kind) before answering; a request whose
client hung up meanwhile is recorded with `client_disconnected=True` and never counts as accepted.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from recorder_service.tools.asgi_server import serve_in_task

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_CALLBACK_PATH = "/v1/recorder/callbacks"


def new_callback_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class CallbackDelivery:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    payload: Any  # parsed JSON body; None when it is not JSON
    signature_valid: bool
    status: int  # what the receiver answered (or would have, had the client waited)
    client_disconnected: bool
    received_at: float  # time.time()

    @property
    def accepted(self) -> bool:
        return self.signature_valid and 200 <= self.status < 300 and not self.client_disconnected

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def webhook_timestamp(self) -> str | None:
        return self.headers.get("webhook-timestamp")

    @property
    def webhook_signature(self) -> str | None:
        return self.headers.get("webhook-signature")

    @property
    def traceparent(self) -> str | None:
        return self.headers.get("traceparent")


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]


class CallbackReceiver:
    def __init__(
        self, secret: str | None = None, *, host: str = "127.0.0.1", path: str = DEFAULT_CALLBACK_PATH
    ) -> None:
        self.secret = secret or new_callback_secret()
        self.path = path
        self._host = host
        self._webhook = Webhook(self.secret)
        self._port = 0  # chosen on first start, then kept across set_down()
        self._base_url: str | None = None
        self._server: contextlib.AsyncExitStack | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self._failures: collections.deque[_Answer] = collections.deque()
        self._delays_s: collections.deque[float] = collections.deque()
        self._standing: _Answer | None = None
        self.all_requests: list[CallbackDelivery] = []

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("CallbackReceiver has not been started")
        return self._base_url + self.path

    @property
    def is_down(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        if self._server is not None:
            return
        self._closing = asyncio.Event()
        stack = contextlib.AsyncExitStack()
        base_url = await stack.enter_async_context(serve_in_task(self._asgi_app(), self._host, self._port))
        self._server, self._base_url = stack, base_url
        self._port = urllib.parse.urlsplit(base_url).port or 0

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._closing.set()  # held (delayed) requests answer 503 now instead of blocking shutdown
            await server.aclose()

    async def set_down(self, down: bool) -> None:
        await (self.stop() if down else self.start())

    async def __aenter__(self) -> CallbackReceiver:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- programmed behaviour ----------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, headers: Mapping[str, str] | None = None) -> None:
        self._failures.extend(_Answer(status, dict(headers or {})) for _ in range(n))

    def delay_next(self, n: int, seconds: float) -> None:
        self._delays_s.extend(seconds for _ in range(n))

    def respond_with(self, status: int | None, headers: Mapping[str, str] | None = None) -> None:
        self._standing = None if status is None else _Answer(status, dict(headers or {}))

    def reset(self) -> None:
        self._failures.clear()
        self._delays_s.clear()
        self._standing = None

    # -- observations ------------------------------------------------------------------

    @property
    def accepted(self) -> list[CallbackDelivery]:
        return [d for d in self.all_requests if d.accepted]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[CallbackDelivery]:
        """Wait until `accepted` holds at least `count` deliveries; returns them."""
        await self._wait_until(lambda: len(self.accepted) >= count, timeout_s, f"{count} accepted")
        return self.accepted

    async def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> list[CallbackDelivery]:
        """Wait until at least `count` requests were answered, whatever the answer."""
        await self._wait_until(lambda: len(self.all_requests) >= count, timeout_s, f"{count} requests")
        return list(self.all_requests)

    async def _wait_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            seen = [(d.status, d.signature_valid, d.webhook_id) for d in self.all_requests]
            raise TimeoutError(f"waited {timeout_s}s for {what}; got (status, signed, id): {seen}") from None

    # -- the ASGI app ------------------------------------------------------------------

    def _asgi_app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        # A plain coroutine function: uvicorn would take a bound method for an ASGI2 app.
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await self._app(scope, receive, send)

        return app

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _run_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return  # client left before sending its body
        headers = _decode_headers(scope["headers"])
        payload, signature_valid = self._verify(body, headers)
        answer = self._choose_answer(scope, signature_valid, payload)

        disconnected = False
        if self._delays_s:
            disconnected, closing = await self._hold(receive, self._delays_s.popleft())
            if closing:
                answer = _Answer(503, {})
        self.all_requests.append(
            CallbackDelivery(
                method=scope["method"],
                path=scope["path"],
                headers=headers,
                body=body,
                payload=payload,
                signature_valid=signature_valid,
                status=answer.status,
                client_disconnected=disconnected,
                received_at=time.time(),
            )
        )
        async with self._changed:
            self._changed.notify_all()
        if not disconnected:
            await _respond(send, answer)

    def _verify(self, body: bytes, headers: Mapping[str, str]) -> tuple[Any, bool]:
        try:
            self._webhook.verify(body, dict(headers), json_parse=False)
        except Exception:  # WebhookVerificationError, or a malformed header/body it trips on
            signature_valid = False
        else:
            signature_valid = True
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        return payload, signature_valid

    def _choose_answer(self, scope: Scope, signature_valid: bool, payload: Any) -> _Answer:
        if scope["path"] != self.path:
            return _Answer(404, {})
        if scope["method"] != "POST":
            return _Answer(405, {"allow": "POST"})
        if not signature_valid:
            return _Answer(401, {})
        if self._failures:
            return self._failures.popleft()
        if self._standing is not None:
            return self._standing
        return _Answer(200 if payload is not None else 400, {})

    async def _hold(self, receive: Receive, seconds: float) -> tuple[bool, bool]:
        """Sleep up to `seconds`; returns (client disconnected, server closing)."""
        # After the body, receive() only returns once the client disconnects.
        hang_up = asyncio.ensure_future(receive())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({hang_up, closing}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hang_up.cancel()
            closing.cancel()
        disconnected = (
            hang_up.done() and not hang_up.cancelled() and hang_up.result()["type"] == "http.disconnect"
        )
        return disconnected, self._closing.is_set()


async def _run_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


async def _respond(send: Send, answer: _Answer) -> None:
    body = json.dumps({"status_code": answer.status}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def callback_receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver() as receiver:
        yield receiver
