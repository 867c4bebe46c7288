"""Playback tokens (core/playback_tokens.py): the contract's rule, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder_service.client import mint_playback_token
from recorder_service.core.playback_tokens import (
    CLOCK_SKEW_S,
    MAX_LIFETIME_S,
    PlaybackTokens,
    TokenVerdict,
)

SECRET = "unit-playback-secret-0123456789abcdef"
MEETING = "0b5e8c2e-7a77-4d5b-9d7e-2f1f9c1f3c11"
NOW = 1_795_000_000.0
EXP = int(NOW) + 900
TOKENS = PlaybackTokens(SECRET)


def contract_token(secret: str, meeting_id: str, exp: int) -> str:
    """Contract §4, written out independently of both implementations."""
    mac = hmac.new(secret.encode("utf-8"), f"{meeting_id}.{exp}".encode(), hashlib.sha256).digest()
    return f"{exp}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_the_service_and_the_client_mint_the_contracts_token() -> None:
    expected = contract_token(SECRET, MEETING, EXP)
    assert TOKENS.mint(MEETING, EXP) == expected
    assert mint_playback_token(SECRET, MEETING, EXP) == expected
    assert TOKENS.check(MEETING, expected, NOW) == TokenVerdict.VALID


def test_a_token_for_the_full_24_hours_is_accepted() -> None:
    exp = int(NOW) + MAX_LIFETIME_S
    assert TOKENS.check(MEETING, TOKENS.mint(MEETING, exp), NOW) == TokenVerdict.VALID


def _tampered(token: str) -> str:
    exp, sig = token.split(".")
    return f"{exp}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"


@pytest.mark.parametrize(
    ("token", "verdict"),
    [
        (None, TokenVerdict.MISSING),
        ("", TokenVerdict.MISSING),
        (_tampered(contract_token(SECRET, MEETING, EXP)), TokenVerdict.BAD_SIGNATURE),
        (contract_token(SECRET, "another-meeting", EXP), TokenVerdict.BAD_SIGNATURE),
        (contract_token("another-secret-of-enough-length-0123", MEETING, EXP), TokenVerdict.BAD_SIGNATURE),
        # The signature covers exp: the same signature with a later expiry is refused.
        (f"{EXP + 3600}.{contract_token(SECRET, MEETING, EXP).split('.')[1]}", TokenVerdict.BAD_SIGNATURE),
        (contract_token(SECRET, MEETING, int(NOW) - 1), TokenVerdict.EXPIRED),
        (contract_token(SECRET, MEETING, int(NOW)), TokenVerdict.EXPIRED),
        (contract_token(SECRET, MEETING, int(NOW) + 3 * 86400), TokenVerdict.TOO_FAR_AHEAD),
        (
            contract_token(SECRET, MEETING, int(NOW) + MAX_LIFETIME_S + CLOCK_SKEW_S + 1),
            TokenVerdict.TOO_FAR_AHEAD,
        ),
        ("soon." + contract_token(SECRET, MEETING, EXP).split(".")[1], TokenVerdict.MALFORMED),
        ("-1." + "A" * 43, TokenVerdict.MALFORMED),
        (contract_token(SECRET, MEETING, EXP) + "=", TokenVerdict.MALFORMED),  # padded
        (contract_token(SECRET, MEETING, EXP) + "\n", TokenVerdict.MALFORMED),
        (" " + contract_token(SECRET, MEETING, EXP), TokenVerdict.MALFORMED),
        (
            contract_token(SECRET, MEETING, EXP).replace("-", "+").replace("_", "/") + "==",
            TokenVerdict.MALFORMED,
        ),
        (str(EXP), TokenVerdict.MALFORMED),
        (".", TokenVerdict.MALFORMED),
        ("١٧٩٥٠٠٠٩٠٠." + "A" * 43, TokenVerdict.MALFORMED),  # Arabic-Indic digits are not digits here
        ("9" * 40 + "." + "A" * 43, TokenVerdict.MALFORMED),
        ("x" * 1_000_000, TokenVerdict.MALFORMED),
        ("é" * 55, TokenVerdict.MALFORMED),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_refusals(token: str | None, verdict: TokenVerdict) -> None:
    assert TOKENS.check(MEETING, token, NOW) == verdict


@given(st.text(max_size=80))
def test_arbitrary_text_is_never_accepted_and_never_raises(token: str) -> None:
    assert TOKENS.check(MEETING, token, NOW) != TokenVerdict.VALID


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        PlaybackTokens("x" * 31)
    PlaybackTokens("x" * 32)


def test_meeting_ids_are_signed_as_utf8_text() -> None:
    # Meeting ids are ASCII by the contract; anything else still signs, and never matches another id.
    token = TOKENS.mint("m:1.2_3-4", EXP)
    assert TOKENS.check("m:1.2_3-4", token, NOW) == TokenVerdict.VALID
    assert TOKENS.check("m:1.2_3-5", token, NOW) == TokenVerdict.BAD_SIGNATURE
