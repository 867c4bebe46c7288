"""The operations surface: with RECORDER_METRICS_PORT, /metrics is served on that port only
(the real CLI `serve`, over real HTTP)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.plugins.processes import free_port, replicas
from tests.plugins.service import service_env


async def test_metrics_move_to_their_own_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    env = service_env(f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}", RECORDER_METRICS_PORT=str(metrics_port))
    async with replicas(env, 1) as [replica], httpx.AsyncClient(timeout=10) as client:
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        scraped = await client.get(f"{metrics_url}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        # The API's port (the one behind the ingress) does not show them…
        assert (await client.get(f"{replica.url}/metrics")).status_code == 404
        assert (await client.get(f"{replica.url}/healthz")).status_code == 200
        # …and the metrics port serves nothing else.
        assert (await client.get(f"{metrics_url}/healthz")).status_code == 404
        r = await client.post(f"{metrics_url}/v1/meetings/m/recordings/start", json={"type": "raw-tracks"})
        assert r.status_code == 404
