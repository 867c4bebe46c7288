"""docs/openapi.json is exactly what the service serves (regenerate with
`uv run python -m recorder_service.openapi > docs/openapi.json`)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.plugins.service import ServiceFactory, service_env
from tests.support.paths import DOCS

DOC = DOCS / "openapi.json"
CONTRACT_PATHS = {
    "/v1/meetings/{meeting_id}/recordings/start",
    "/v1/meetings/{meeting_id}/cloud-recording",
    "/v1/meetings/{meeting_id}",
    "/v1/meetings/{meeting_id}/recordings",
    "/v1/recordings/availability",
    "/v1/meetings/{meeting_id}/cloud-recording/link",
    "/v1/daily/webhook",
    "/healthz",
    "/readyz",
}


async def test_committed_openapi_matches_the_served_one(
    sqlite_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(sqlite_url)) as svc:
        served = (await svc.client.get("/schema/openapi.json")).json()
    committed = json.loads(DOC.read_text())
    assert committed == served, "docs/openapi.json is stale: regenerate it (see this module's docstring)"
    assert set(committed["paths"]) >= CONTRACT_PATHS


def test_the_image_serves_the_same_document_under_python_OO() -> None:
    """The image runs with PYTHONOPTIMIZE=2, which drops docstrings; nothing the document says may
    come from one (the enums' descriptions are assignments, core/statuses.py)."""
    out = subprocess.run(
        [sys.executable, "-OO", "-m", "recorder_service.openapi"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == json.loads(DOC.read_text())
