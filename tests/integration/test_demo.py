"""README's first command: `recorder-service demo` plays one meeting through and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_demo_plays_a_meeting_end_to_end(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECORDER_", "AWS_"))}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "recorder_service.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=str(tmp_path),
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in (
        "create Daily webhook",
        "register meeting",
        "two participants join, both browsers start",
        "Daily webhooks arrive",
        "raw-tracks callback to Reflector",
        "play the cloud recording",
        "delete the meeting's recordings",
    ):
        assert "✓" in out
        assert step in out
    assert "Daily got exactly one start per type" in out
    assert "video/mp4, inline" in out
    assert "anonymous 401; with a playback token 307" in out
    assert "(listed: 0 left), 2 verified recording.deleted callbacks" in out
    assert "Demo succeeded." in out
    assert "X-Amz-Signature" not in out + result.stderr  # presigned URLs are never printed
    print(f"demo took {elapsed:.1f} s")


def test_demo_without_moto_refuses_in_one_line() -> None:
    """The image has no development dependencies: the demo says where to run it instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECORDER_", "AWS_"))}
    hide_moto = "import sys; sys.modules['moto'] = None; from recorder_service.cli import main; sys.exit(main(['demo']))"
    result = subprocess.run(
        [sys.executable, "-c", hide_moto], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("recorder-service: the demo needs the development dependencies (moto)")
    assert "checkout" in line
