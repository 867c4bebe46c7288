"""POST /v1/daily/webhook: thin; verification, storage and effects live in domain/ingest."""

from __future__ import annotations

from litestar import Controller, post

from recorder_service.http.guards import AnyRequest, resources_of
from recorder_service.http.tracing import LeanServerTracing
from recorder_service.services.ingest import WebhookReceipt, receive_webhook


class DailyWebhookController(Controller):
    path = "/v1/daily/webhook"
    tags = ["daily"]
    # Traced by hand: the app's generic ASGI instrumentation skips this path (see lean_tracing).
    middleware = [LeanServerTracing]

    @post("/", status_code=200, summary="Daily.co webhook receiver (signed with the Daily HMAC scheme)")
    async def receive(self, request: AnyRequest) -> WebhookReceipt:
        body = await request.body()  # raw bytes: the signature covers them exactly
        return await receive_webhook(
            resources_of(request).ingest,
            body,
            timestamp=request.headers.get("x-webhook-timestamp"),
            signature=request.headers.get("x-webhook-signature"),
            traceparent=request.headers.get("traceparent"),
        )
