"""Verifying Daily's webhook signature (docs/daily-api.md §8).

signature = base64(HMAC-SHA256(base64decode(secret), timestamp + "." + raw body)), standard alphabet with
padding, sent as X-Webhook-Signature next to X-Webhook-Timestamp. Several secrets may be configured so a
secret can be rotated without dropping events. Daily documents no replay window, and whether it re-signs
retries is unknown, so no timestamp age check happens here; the event id is the idempotency key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from recorder_service.core.hmac_keys import decode_base64_key


def decode_daily_secret(secret_b64: str) -> bytes:
    """The HMAC key of a Daily webhook secret; ValueError for a secret that is not base64."""
    return decode_base64_key(secret_b64, what="Daily webhook secret")


class DailyWebhookVerifier:
    def __init__(self, secrets_b64: Sequence[str]) -> None:
        if isinstance(secrets_b64, str):
            raise TypeError("pass a sequence of secrets, not a single string")
        if not secrets_b64:
            raise ValueError("at least one Daily webhook secret is required")
        self._keys = tuple(decode_daily_secret(s) for s in secrets_b64)

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> bool:
        """True if any configured secret produced `signature`; never raises for request input."""
        if not timestamp or not signature:
            return False
        try:
            message = timestamp.encode("ascii") + b"." + body
            given = signature.strip().encode("ascii")
        except UnicodeEncodeError:
            return False
        matched = False
        # Check every key (no early exit) so timing does not reveal which secret matched.
        for key in self._keys:
            expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())
            matched |= hmac.compare_digest(expected, given)
        return matched
