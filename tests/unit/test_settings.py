from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from recorder_service.settings import (
    DEFAULT_CALLBACK_RETRY_SECONDS,
    ConfigError,
    load_settings,
    unknown_variables,
)

# The shape of a Daily API key (64 hex digits); a placeholder such as "k" is refused against Daily's API.
DAILY_KEY = "3f9c1a7e5b2d4c6a8e0f1b3d5c7a9e2f4b6d8c0a1e3f5b7d9c2a4e6f8b0d1c3e"
PLAYBACK = {"RECORDER_PLAYBACK_SECRET": "f3a1c9e7b5d2846a0c1e3f5b7d9a2c4e"}
BASE = {"RECORDER_DAILY_API_KEY": DAILY_KEY} | PLAYBACK
SECRET_1 = base64.b64encode(b"first-webhook-secret-of-32-bytes").decode()
SECRET_2 = base64.b64encode(b"second-webhook-secret-32-bytes!!").decode()


def test_defaults_match_the_contract() -> None:
    s = load_settings(BASE)
    assert s.database_url == "sqlite+aiosqlite:///./recorder.db"
    assert s.redis_url is None
    assert s.daily_api_url == "https://api.daily.co/v1"
    assert s.s3_region == "us-east-1"
    assert s.presign_ttl_seconds == 3600
    assert s.cloud_start == "server"
    assert s.background is True
    assert s.reconcile_interval_seconds == 300
    assert s.rate_limit_per_minute == 600
    assert s.redis_prefix == "recorder:"
    assert sum(DEFAULT_CALLBACK_RETRY_SECONDS) >= 24 * 3600


def test_comma_lists_are_split() -> None:
    s = load_settings(
        BASE
        | {
            "RECORDER_CORS_ORIGINS": "https://a.example, https://b.example",
            "RECORDER_DAILY_WEBHOOK_SECRETS": f"{SECRET_1}, {SECRET_2}",
            "RECORDER_CALLBACK_RETRY_SECONDS": "1,2.5,10",
        }
    )
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.daily_webhook_secrets == (SECRET_1, SECRET_2)
    assert s.callback_retry_seconds == (1.0, 2.5, 10.0)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RECORDER_PRESIGN_TTL_SECONDS": "soon"}, "RECORDER_PRESIGN_TTL_SECONDS"),
        ({"RECORDER_RATE_LIMIT_PER_MINUTE": "0"}, "RECORDER_RATE_LIMIT_PER_MINUTE"),
        ({"RECORDER_CLOUD_START": "browser"}, "RECORDER_CLOUD_START"),
        ({"RECORDER_BACKGROUND": "maybe"}, "RECORDER_BACKGROUND"),
        ({"RECORDER_CALLBACK_RETRY_SECONDS": "5,-1"}, "RECORDER_CALLBACK_RETRY_SECONDS"),
        ({"RECORDER_DATABASE_URL": "mysql://x"}, "RECORDER_DATABASE_URL"),
        ({"RECORDER_CALLBACK_URL": "https://r.example/cb"}, "RECORDER_CALLBACK_SECRET"),
        (
            {"RECORDER_CALLBACK_URL": "https://r.example/cb", "RECORDER_CALLBACK_SECRET": "plain"},
            "RECORDER_CALLBACK_SECRET",
        ),
        ({"RECORDER_DAILY_WEBHOOK_SECRETS": "not base64!"}, "RECORDER_DAILY_WEBHOOK_SECRETS"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(BASE | env)


def test_daily_key_required_for_real_daily_only() -> None:
    with pytest.raises(ConfigError, match="RECORDER_DAILY_API_KEY"):
        load_settings({})
    assert (
        load_settings({"RECORDER_DAILY_API_URL": "http://127.0.0.1:8900/v1"} | PLAYBACK).daily_api_key == ""
    )


def test_secret_values_never_appear_in_errors() -> None:
    secret = "whsec_notbase64-SECRET-VALUE"
    with pytest.raises(ConfigError) as info:
        load_settings(
            BASE | {"RECORDER_CALLBACK_URL": "https://r.example", "RECORDER_CALLBACK_SECRET": secret}
        )
    assert secret not in str(info.value)


def test_unknown_variables_are_reported() -> None:
    assert unknown_variables({"RECORDER_DATABSE_URL": "x", "RECORDER_DATABASE_URL": "y", "PATH": "/"}) == [
        "RECORDER_DATABSE_URL"
    ]


def test_cli_stops_with_one_line_naming_the_variable(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recorder_service.cli", "migrate"],
        env={"RECORDER_DAILY_API_KEY": DAILY_KEY, "RECORDER_PRESIGN_TTL_SECONDS": "-5", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "RECORDER_PRESIGN_TTL_SECONDS" in lines[0]


def test_cli_warns_about_unknown_variable_and_runs(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    db = tmp_path / "sub" / "r.db"
    result = subprocess.run(
        [sys.executable, "-m", "recorder_service.cli", "migrate"],
        env={
            "RECORDER_DAILY_API_KEY": DAILY_KEY,
            **PLAYBACK,
            "RECORDER_DATABSE_URL": "typo",
            "PATH": "/usr/bin",
            "RECORDER_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "RECORDER_DATABSE_URL" in result.stderr
    assert db.exists()
