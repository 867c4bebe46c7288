"""Playback tokens (contract §4): who may follow the playback redirect of a meeting.

A token is `<exp>.<sig>`: `exp` the expiry in Unix seconds, `sig` the unpadded base64url
HMAC-SHA256, keyed by the UTF-8 bytes of RECORDER_PLAYBACK_SECRET, of `"<meeting_id>.<exp>"`.
Reflector mints them after its own access check (the transcript's share mode) with the same
secret, without asking this service. Meeting ids are not secret; the token is the credential.

Every rejection is one verdict among several, but the HTTP answer is the same for all of them
(403) and is given before any database lookup, so it says nothing about what exists.
"""

from __future__ import annotations

import base64
import hmac
import re
from enum import StrEnum

# The contract: a token expires at most 24 h after it is minted.
MAX_LIFETIME_S = 24 * 3600
# Reflector's clock and ours may disagree a little: a token minted for the full 24 h by a
# host whose clock runs ahead is still accepted within this margin.
CLOCK_SKEW_S = 300
MIN_SECRET_CHARS = 32

# Unix seconds fit in 11 digits until the year 5138; the signature of 32 bytes is 43 characters.
_TOKEN = re.compile(r"([0-9]{1,11})\.([A-Za-z0-9_-]{43})")
_MAX_TOKEN_CHARS = 11 + 1 + 43


class TokenVerdict(StrEnum):
    VALID = "valid"
    MISSING = "missing"  # no token, or an empty one: 401
    MALFORMED = "malformed"  # not `<digits>.<43 base64url characters>`: 403
    BAD_SIGNATURE = "bad_signature"  # tampered, another meeting's, or another secret's: 403
    EXPIRED = "expired"  # 403
    TOO_FAR_AHEAD = "too_far_ahead"  # expires more than 24 h from now: 403


def _signature(key: bytes, meeting_id: str, exp_text: str) -> bytes:
    digest = hmac.digest(key, f"{meeting_id}.{exp_text}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


class PlaybackTokens:
    """Mints and checks the tokens of one secret. Pure computation: no clock, no I/O."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the playback secret must be at least {MIN_SECRET_CHARS} characters")
        self._key = secret.encode()

    def mint(self, meeting_id: str, exp: int) -> str:
        if exp < 0:
            raise ValueError("exp must be Unix seconds")
        exp_text = str(exp)
        return f"{exp_text}.{_signature(self._key, meeting_id, exp_text).decode()}"

    def check(self, meeting_id: str, token: str | None, now_s: float) -> TokenVerdict:
        """What `token` proves about playing `meeting_id` at `now_s`. Never raises."""
        if not token:
            return TokenVerdict.MISSING
        if len(token) > _MAX_TOKEN_CHARS:
            return TokenVerdict.MALFORMED
        match = _TOKEN.fullmatch(token)
        if match is None:
            return TokenVerdict.MALFORMED
        exp_text, given = match.groups()
        # Constant time: the comparison does not stop at the first differing character.
        if not hmac.compare_digest(_signature(self._key, meeting_id, exp_text), given.encode()):
            return TokenVerdict.BAD_SIGNATURE
        exp = int(exp_text)
        if exp <= now_s:
            return TokenVerdict.EXPIRED
        if exp > now_s + MAX_LIFETIME_S + CLOCK_SKEW_S:
            return TokenVerdict.TOO_FAR_AHEAD
        return TokenVerdict.VALID
