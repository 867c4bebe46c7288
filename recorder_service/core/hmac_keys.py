"""HMAC keys given as base64 text (Daily webhook secrets, Standard Webhooks `whsec_` secrets)."""

from __future__ import annotations

import base64
import binascii


def decode_base64_key(text: str, *, what: str) -> bytes:
    """The key bytes; ValueError naming `what` (never the value) if not base64 or empty."""
    text = text.strip()
    text += "=" * (-len(text) % 4)  # tolerate missing padding, nothing else
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not valid base64") from exc
    if not key:
        raise ValueError(f"{what} is empty")
    return key
