"""docs/operations.md documents every setting, with its real default, and nothing stale."""

from __future__ import annotations

import re

import msgspec

from recorder_service.settings import Settings, env_name
from tests.support.paths import DOCS

DOC = DOCS / "operations.md"
ROW = re.compile(r"^\| `(RECORDER_[A-Z0-9_]+)` \| ([^|]*) \|")


def rendered_default(field: str) -> str:
    """How the settings table writes a field's default (the cell after the name)."""
    info = next(f for f in msgspec.structs.fields(Settings) if f.name == field)
    value = info.default
    if value is msgspec.NODEFAULT or value is None:
        return "unset"
    if value in ("", ()):
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`" + ",".join(_scalar(v) for v in value) + "`"
    return f"`{_scalar(value)}`"


def _scalar(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def documented_defaults() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_every_setting_is_documented_with_its_default() -> None:
    documented = documented_defaults()
    missing = [env_name(f) for f in Settings.__struct_fields__ if env_name(f) not in documented]
    assert not missing, f"docs/operations.md lacks a row for {missing}"
    wrong = {
        env_name(f): (documented[env_name(f)], rendered_default(f))
        for f in Settings.__struct_fields__
        if documented[env_name(f)] != rendered_default(f)
    }
    assert not wrong, f"documented vs actual defaults: {wrong}"


def test_no_documented_setting_is_stale() -> None:
    known = {env_name(f) for f in Settings.__struct_fields__}
    assert set(documented_defaults()) <= known


def test_the_metrics_and_admin_endpoints_are_documented() -> None:
    text = DOC.read_text()
    for name in (
        "recorder_starts_total",
        "recorder_webhooks_total",
        "recorder_daily_requests_total",
        "recorder_daily_request_duration_seconds",
        "recorder_callback_attempts_total",
        "recorder_callbacks_pending",
        "recorder_callbacks_oldest_pending_age_seconds",
        "GET /v1/daily/events?state=",
        "GET /v1/callbacks?state=",
        "POST /v1/callbacks/{id}/retry",
        "recorder_deletions_total",
        "recorder_deletions_pending_objects",
        "recorder_deletions_oldest_pending_age_seconds",
        "GET /v1/deletions?state=",
        "POST /v1/deletions/{id}/retry",
        "NoncurrentVersionExpiration",
    ):
        assert name in text, name
