"""Daily's webhook signature (reference §8), written independently of the service's verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def sign_webhook(secret_b64: str, timestamp: str, raw_body: bytes) -> str:
    """base64(HMAC-SHA256(base64decode(secret), timestamp + "." + raw_body))."""
    key = base64.b64decode(secret_b64)
    digest = hmac.new(key, timestamp.encode() + b"." + raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def new_webhook_secret() -> str:
    """Daily generates a base64 secret when `hmac` is omitted on create."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True
