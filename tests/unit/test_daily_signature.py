from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from recorder_service.core.daily_signature import DailyWebhookVerifier
from tests.support.daily_signing import daily_headers, sign_daily
from tests.support.paths import DAILY_FIXTURES

EXAMPLE: dict[str, Any] = json.loads((DAILY_FIXTURES / "webhook-signature-example.json").read_text())
SECRET: str = EXAMPLE["hmac_secret_base64"]
TIMESTAMP: str = EXAMPLE["headers"]["X-Webhook-Timestamp"]
SIGNATURE: str = EXAMPLE["headers"]["X-Webhook-Signature"]
BODY: bytes = EXAMPLE["raw_body"].encode()
TAMPERED: bytes = EXAMPLE["tampered_raw_body"].encode()
OTHER_SECRET = base64.b64encode(b"another-secret-of-some-length-32").decode()


def test_fixture_example_verifies() -> None:
    assert EXAMPLE["expected_valid"] is True
    assert DailyWebhookVerifier([SECRET]).verify(TIMESTAMP, SIGNATURE, BODY)


def test_fixture_tampered_body_fails() -> None:
    assert EXAMPLE["tampered_expected_valid"] is False
    assert not DailyWebhookVerifier([SECRET]).verify(TIMESTAMP, SIGNATURE, TAMPERED)


def test_support_signer_reproduces_the_fixture_signature() -> None:
    # The test-side signer other suites rely on agrees with Daily's worked example.
    assert sign_daily(SECRET, TIMESTAMP, BODY) == SIGNATURE
    headers = daily_headers(SECRET, TIMESTAMP, BODY)
    assert headers["X-Webhook-Signature"] == SIGNATURE
    assert headers["X-Webhook-Timestamp"] == TIMESTAMP


def test_any_configured_secret_may_verify() -> None:
    assert DailyWebhookVerifier([OTHER_SECRET, SECRET]).verify(TIMESTAMP, SIGNATURE, BODY)
    assert DailyWebhookVerifier([SECRET, OTHER_SECRET]).verify(TIMESTAMP, SIGNATURE, BODY)
    assert not DailyWebhookVerifier([OTHER_SECRET]).verify(TIMESTAMP, SIGNATURE, BODY)


def test_verifier_object_reuses_decoded_secrets() -> None:
    verifier = DailyWebhookVerifier([OTHER_SECRET, SECRET])
    assert verifier.verify(TIMESTAMP, SIGNATURE, BODY)
    assert not verifier.verify(TIMESTAMP, SIGNATURE, TAMPERED)


def test_timestamp_is_part_of_the_signed_message() -> None:
    assert not DailyWebhookVerifier([SECRET]).verify(str(int(TIMESTAMP) + 1), SIGNATURE, BODY)
    assert not DailyWebhookVerifier([SECRET]).verify(TIMESTAMP + " ", SIGNATURE, BODY)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        (None, SIGNATURE),
        (TIMESTAMP, None),
        (None, None),
        ("", SIGNATURE),
        (TIMESTAMP, ""),
        (TIMESTAMP, "not base64 at all!"),
        (TIMESTAMP, SIGNATURE.rstrip("=")),
        (TIMESTAMP, SIGNATURE.lower()),
        (TIMESTAMP, "v1," + SIGNATURE),
        (TIMESTAMP, SIGNATURE + "é"),
        ("1767262203é", SIGNATURE),
        (TIMESTAMP, base64.urlsafe_b64encode(base64.b64decode(SIGNATURE)).decode() + "x"),
    ],
)
def test_missing_or_malformed_headers_are_rejected(timestamp: str | None, signature: str | None) -> None:
    assert not DailyWebhookVerifier([SECRET]).verify(timestamp, signature, BODY)


def test_surrounding_whitespace_in_the_signature_header_is_tolerated() -> None:
    assert DailyWebhookVerifier([SECRET]).verify(TIMESTAMP, f" {SIGNATURE}\n", BODY)


def test_unpadded_secret_is_accepted() -> None:
    unpadded = base64.b64encode(b"0123456789abcdefghij").decode().rstrip("=")
    assert unpadded != base64.b64encode(b"0123456789abcdefghij").decode()
    signature = sign_daily(base64.b64encode(b"0123456789abcdefghij").decode(), TIMESTAMP, BODY)
    assert DailyWebhookVerifier([unpadded]).verify(TIMESTAMP, signature, BODY)


@pytest.mark.parametrize("secrets", [[], ["not*base64"], [""], [SECRET, "%%%"]])
def test_misconfigured_secrets_fail_at_construction(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="secret"):
        DailyWebhookVerifier(secrets)


def test_a_single_string_is_not_a_list_of_secrets() -> None:
    with pytest.raises(TypeError):
        DailyWebhookVerifier(SECRET)


_VERIFIER = DailyWebhookVerifier([SECRET])


@given(st.none() | st.text(max_size=40), st.none() | st.text(max_size=60), st.binary(max_size=256))
def test_random_headers_and_bodies_never_raise_and_never_verify(
    timestamp: str | None, signature: str | None, body: bytes
) -> None:
    assume(signature != SIGNATURE)
    assert _VERIFIER.verify(timestamp, signature, body) is False


@given(
    st.binary(min_size=1, max_size=64),
    st.integers(min_value=0, max_value=2**40).map(str),
    st.binary(max_size=256),
    st.binary(max_size=256),
)
def test_a_signature_only_matches_the_body_it_was_made_for(
    key: bytes, timestamp: str, signed_body: bytes, other_body: bytes
) -> None:
    secret = base64.b64encode(key).decode()
    signature = sign_daily(secret, timestamp, signed_body)
    verifier = DailyWebhookVerifier([secret])
    assert verifier.verify(timestamp, signature, signed_body)
    assert verifier.verify(timestamp, signature, other_body) == (other_body == signed_body)


@given(st.integers(min_value=0, max_value=len(BODY) - 1), st.integers(1, 255))
def test_any_single_byte_change_to_the_fixture_body_fails(position: int, delta: int) -> None:
    tampered = bytearray(BODY)
    tampered[position] = (tampered[position] + delta) % 256
    assert not _VERIFIER.verify(TIMESTAMP, SIGNATURE, bytes(tampered))
