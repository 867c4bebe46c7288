"""Signs requests the way Daily does (docs/daily-api.md §8), written from the reference text alone.

Deliberately independent of recorder_service so a shared misreading cannot make both sides agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign_daily(secret_b64: str, timestamp: str, body: bytes) -> str:
    """X-Webhook-Signature for `body` sent at `timestamp` (unix seconds, as the header string)."""
    key = base64.b64decode(secret_b64)
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def daily_headers(secret_b64: str, timestamp: str, body: bytes) -> dict[str, str]:
    """The headers of a signed Daily webhook delivery."""
    return {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign_daily(secret_b64, timestamp, body),
    }
