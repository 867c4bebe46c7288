"""Settings of the Daily simulator."""

from __future__ import annotations

import msgspec


class SimulatorConfig(msgspec.Struct, frozen=True, kw_only=True):
    # When set, every /v1 call needs "Authorization: Bearer <api_key>", as Daily does.
    api_key: str | None = None
    domain_name: str = "sim-domain"
    # Daily answers "not hosting a call" for a while after the first participant joins.
    hosting_delay_s: float = 0.0
    # (n, window_s): at most n recording-start requests per sliding window, else 429.
    start_rate_limit: tuple[int, float] | None = None
    webhook_delivery_delay_s: float = 0.0
    # With both set, finished recordings are written to this bucket, like Daily's custom bucket.
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
