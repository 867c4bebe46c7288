"""The privacy settings (contract §2): playback auth and secret, retention, deletions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recorder_service.settings import DEFAULT_DELETION_RETRY_SECONDS, ConfigError, load_settings

# A Daily API key has the shape of 64 hex digits; a placeholder is refused against Daily's API.
DAILY = {"RECORDER_DAILY_API_KEY": "3f9c1a7e5b2d4c6a8e0f1b3d5c7a9e2f4b6d8c0a1e3f5b7d9c2a4e6f8b0d1c3e"}
PLAYBACK_SECRET = "Zq4Lm8Xv2Rt6Np0Wc3Yh7Bk1Fd5Gs9Ja"  # 32 characters
SECRET = {"RECORDER_PLAYBACK_SECRET": PLAYBACK_SECRET}


def test_defaults() -> None:
    s = load_settings(DAILY | SECRET)
    assert (s.playback_auth, s.playback_secret) == ("token", PLAYBACK_SECRET)
    assert (s.retention_cloud_days, s.retention_raw_tracks_days) == (None, None)  # kept
    assert s.retention_interval_seconds == 3600
    assert s.public_base_url is None
    assert s.deletion_retry_seconds == DEFAULT_DELETION_RETRY_SECONDS


def test_open_playback_needs_no_secret_and_retention_takes_fractions() -> None:
    s = load_settings(
        DAILY
        | {
            "RECORDER_PLAYBACK_AUTH": "open",
            "RECORDER_RETENTION_CLOUD_DAYS": "90",
            "RECORDER_RETENTION_RAW_TRACKS_DAYS": "0.5",
            "RECORDER_DELETION_RETRY_SECONDS": "1, 2.5",
        }
    )
    assert (s.playback_auth, s.playback_secret) == ("open", None)
    assert (s.retention_cloud_days, s.retention_raw_tracks_days) == (90, 0.5)
    assert s.deletion_retry_seconds == (1.0, 2.5)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "RECORDER_PLAYBACK_SECRET"),  # required by the default, token
        ({"RECORDER_PLAYBACK_SECRET": "s" * 31}, "RECORDER_PLAYBACK_SECRET"),
        ({"RECORDER_PLAYBACK_AUTH": "open", "RECORDER_PLAYBACK_SECRET": "short"}, "RECORDER_PLAYBACK_SECRET"),
        (SECRET | {"RECORDER_PLAYBACK_AUTH": "anonymous"}, "RECORDER_PLAYBACK_AUTH"),
        (SECRET | {"RECORDER_RETENTION_CLOUD_DAYS": "0"}, "RECORDER_RETENTION_CLOUD_DAYS"),
        (SECRET | {"RECORDER_RETENTION_RAW_TRACKS_DAYS": "a week"}, "RECORDER_RETENTION_RAW_TRACKS_DAYS"),
        (SECRET | {"RECORDER_RETENTION_INTERVAL_SECONDS": "-1"}, "RECORDER_RETENTION_INTERVAL_SECONDS"),
        (SECRET | {"RECORDER_PUBLIC_BASE_URL": "recorder.example.com"}, "RECORDER_PUBLIC_BASE_URL"),
        (SECRET | {"RECORDER_DELETION_RETRY_SECONDS": ""}, "RECORDER_DELETION_RETRY_SECONDS"),
        (SECRET | {"RECORDER_DELETION_LEASE_SECONDS": "0"}, "RECORDER_DELETION_LEASE_SECONDS"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(DAILY | env)


def test_the_secret_never_appears_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(DAILY | {"RECORDER_PLAYBACK_SECRET": "too-short-SECRET-value"})
    assert "too-short-SECRET-value" not in str(info.value)


def test_the_process_stops_with_one_line_naming_the_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recorder_service.cli", "migrate"],
        env={**DAILY, "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "RECORDER_PLAYBACK_SECRET" in line
