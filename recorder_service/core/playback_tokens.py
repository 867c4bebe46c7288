"""Playback tokens (contract §4): who may follow the playback redirect of a meeting.

A token is `<exp>.<sig>`: `exp` the expiry in Unix seconds, `sig` the unpadded base64url
HMAC-SHA256, keyed by the UTF-8 bytes of RECORDER_PLAYBACK_SECRET, of `"<meeting_id>.<exp>"`.
Reflector mints them after its own access check (the transcript's share mode) with the same
secret, without asking this service. Meeting ids are not secret; the token is the credential.

Every rejection is one verdict among several, but the HTTP answer is the same for all of them
(403) and is given before any database lookup, so it says nothing about what exists.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from enum import StrEnum

# The contract: a token expires at most 24 h after it is minted.
MAX_LIFETIME_S = 24 * 3600
# Reflector's clock and ours may disagree a little: a token minted for the full 24 h by a
# host whose clock runs ahead is still accepted within this margin.
CLOCK_SKEW_S = 300
MIN_SECRET_CHARS = 32

# Unix seconds fit in 11 digits until the year 5138; the signature of 32 bytes is 43 characters.
_MAX_EXP_DIGITS = 11
_SIGNATURE_CHARS = 43
_MAX_TOKEN_CHARS = _MAX_EXP_DIGITS + 1 + _SIGNATURE_CHARS
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_BLOCK = 64  # SHA-256's block size


class TokenVerdict(StrEnum):
    VALID = "valid"
    MISSING = "missing"  # no token, or an empty one: 401
    MALFORMED = "malformed"  # not `<digits>.<43 base64url characters>`: 403
    BAD_SIGNATURE = "bad_signature"  # tampered, another meeting's, or another secret's: 403
    EXPIRED = "expired"  # 403
    TOO_FAR_AHEAD = "too_far_ahead"  # expires more than 24 h from now: 403


class PlaybackTokens:
    """Mints and checks the tokens of one secret. Pure computation: no clock, no I/O."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the playback secret must be at least {MIN_SECRET_CHARS} characters")
        key = secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        # HMAC (RFC 2104) with the key's inner and outer pads hashed once: each token then costs
        # two hash copies instead of a keyed HMAC set-up (half the time of hmac.digest).
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def _signature(self, meeting_id: str, exp_text: str) -> str:
        inner = self._inner.copy()
        inner.update(f"{meeting_id}.{exp_text}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        # Unpadded base64url: 43 characters, the trailing "=" dropped.
        return (
            binascii.b2a_base64(outer.digest(), newline=False)[:_SIGNATURE_CHARS].translate(_URLSAFE).decode()
        )

    def mint(self, meeting_id: str, exp: int) -> str:
        if exp < 0:
            raise ValueError("exp must be Unix seconds")
        exp_text = str(exp)
        return f"{exp_text}.{self._signature(meeting_id, exp_text)}"

    def check(self, meeting_id: str, token: str | None, now_s: float) -> TokenVerdict:
        """What `token` proves about playing `meeting_id` at `now_s`. Never raises."""
        if not token:
            return TokenVerdict.MISSING
        if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            return TokenVerdict.MALFORMED
        exp_text, dot, given = token.partition(".")
        if not (dot and 0 < len(exp_text) <= _MAX_EXP_DIGITS and exp_text.isdigit()):
            return TokenVerdict.MALFORMED
        if len(given) != _SIGNATURE_CHARS:
            return TokenVerdict.MALFORMED
        # The expiry is readable by anyone: checking it first reveals nothing, and spares the HMAC.
        exp = int(exp_text)
        if exp <= now_s:
            return TokenVerdict.EXPIRED
        if exp > now_s + MAX_LIFETIME_S + CLOCK_SKEW_S:
            return TokenVerdict.TOO_FAR_AHEAD
        # Constant time: the comparison does not stop at the first differing character. A
        # signature with characters outside base64url simply does not match.
        if not hmac.compare_digest(self._signature(meeting_id, exp_text), given):
            return TokenVerdict.BAD_SIGNATURE
        return TokenVerdict.VALID
