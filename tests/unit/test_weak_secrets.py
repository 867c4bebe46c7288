"""Weak or placeholder secrets stop the process at start, naming the variable (contract §2)."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from recorder_service.core.secret_strength import is_placeholder
from recorder_service.settings import ConfigError, load_settings

SIM = {
    "RECORDER_DAILY_API_URL": "http://127.0.0.1:8900/v1",
    "RECORDER_PLAYBACK_SECRET": "b7E2kP9qW4zR1xN6cV3mT8yL5hJ0gF2d",
}
STRONG_KEY = "N3v8Qm2xLr7Tz4Kc9Wb1Yd6Hf5Gs0Pj2"  # 32 characters
STRONG_WEBHOOK = base64.b64encode(b"sixteen-bytes-ok").decode()
STRONG_CALLBACK = "whsec_" + base64.b64encode(b"twenty-four-bytes-ok-!!!").decode()


@pytest.mark.parametrize(
    "value",
    ["CHANGE-ME", "changeme", "secret", "xxx", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "<your-key-here>"],
)
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


def test_strong_secrets_are_accepted() -> None:
    settings = load_settings(
        SIM
        | {
            "RECORDER_INTERNAL_API_KEY": STRONG_KEY,
            "RECORDER_DAILY_WEBHOOK_SECRETS": STRONG_WEBHOOK,
            "RECORDER_CALLBACK_URL": "https://reflector.example/callbacks",
            "RECORDER_CALLBACK_SECRET": STRONG_CALLBACK,
        }
    )
    assert settings.internal_api_key == STRONG_KEY


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RECORDER_INTERNAL_API_KEY": "x"}, "RECORDER_INTERNAL_API_KEY"),
        ({"RECORDER_INTERNAL_API_KEY": STRONG_KEY[:31]}, "RECORDER_INTERNAL_API_KEY"),
        (
            {"RECORDER_INTERNAL_API_KEY": "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME"},
            "RECORDER_INTERNAL_API_KEY",
        ),
        (
            {"RECORDER_DAILY_WEBHOOK_SECRETS": base64.b64encode(b"x").decode()},
            "RECORDER_DAILY_WEBHOOK_SECRETS",
        ),
        (
            {
                "RECORDER_DAILY_WEBHOOK_SECRETS": f"{STRONG_WEBHOOK},{base64.b64encode(b'fifteen-bytes!!').decode()}"
            },
            "RECORDER_DAILY_WEBHOOK_SECRETS",
        ),
        (
            {"RECORDER_CALLBACK_SECRET": "whsec_" + base64.b64encode(b"short").decode()},
            "RECORDER_CALLBACK_SECRET",
        ),
        ({"RECORDER_CALLBACK_SECRET": "whsec_CHANGE-ME"}, "RECORDER_CALLBACK_SECRET"),
        (
            {"RECORDER_DATABASE_URL": "postgresql+psycopg://recorder:CHANGE-ME@db.internal:5432/recorder"},
            "RECORDER_DATABASE_URL",
        ),
        ({"RECORDER_REDIS_URL": "redis://:CHANGE-ME@redis.internal:6379/0"}, "RECORDER_REDIS_URL"),
    ],
)
def test_weak_secrets_stop_the_process_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        load_settings(SIM | env)
    for value in env.values():
        assert value not in str(caught.value)


def test_a_placeholder_daily_key_is_refused_against_dailys_api_only() -> None:
    with pytest.raises(ConfigError, match="RECORDER_DAILY_API_KEY"):
        load_settings({"RECORDER_DAILY_API_KEY": "CHANGE-ME"})
    assert load_settings(SIM | {"RECORDER_DAILY_API_KEY": "sim-key"}).daily_api_key == "sim-key"


def test_the_cli_refuses_a_weak_internal_key_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recorder_service.cli", "migrate"],
        env={"PATH": "/usr/bin", **SIM, "RECORDER_INTERNAL_API_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "RECORDER_INTERNAL_API_KEY" in lines[0]
