"""Pytest fixtures: the service itself, on a real uvicorn server over loopback HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import httpx
import pytest

from recorder_service.app import create_app
from recorder_service.client import mint_playback_token
from recorder_service.settings import Settings, load_settings
from recorder_service.tools.asgi_server import serve_in_task

INTERNAL_KEY = "test-internal-key-0123456789abcdefghij"
WEBHOOK_SECRET = "dGVzdC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5YWI="  # base64 of a test secret
AUTH = {"Authorization": f"Bearer {INTERNAL_KEY}"}
# RECORDER_PLAYBACK_AUTH=token is the default: tests that play back carry a token (playback()).
PLAYBACK_SECRET = "test-playback-secret-0123456789abcdef"


def playback(meeting_id: str, ttl_s: int = 600, **params: str) -> dict[str, str]:
    """Query parameters of a playback request: a token minted by the contract's rule (with the
    Reflector client's own minting, not the service's), plus `params`."""
    return {"token": mint_playback_token(PLAYBACK_SECRET, meeting_id, int(time.time()) + ttl_s)} | params


def service_env(db_url: str, daily_url: str = "http://127.0.0.1:9/v1", **overrides: str) -> dict[str, str]:
    """RECORDER_* variables as an operator would set them, with timings shrunk for tests."""
    env = {
        "RECORDER_DATABASE_URL": db_url,
        "RECORDER_DAILY_API_URL": daily_url,
        "RECORDER_DAILY_API_KEY": "sim-key",
        "RECORDER_INTERNAL_API_KEY": INTERNAL_KEY,
        "RECORDER_DAILY_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "RECORDER_PLAYBACK_SECRET": PLAYBACK_SECRET,
        "RECORDER_BACKGROUND": "false",
        "RECORDER_START_NOT_HOSTING_BUDGET_SECONDS": "1.0",
        "RECORDER_START_NOT_HOSTING_DELAY_SECONDS": "0.2",
        "RECORDER_DAILY_TIMEOUT_SECONDS": "2",
        "RECORDER_DAILY_RETRY_BASE_SECONDS": "0.05",
        # Daily's start budget, 5 calls per 0.5 s instead of per 5 s: tests keep it, but fast.
        "RECORDER_DAILY_START_BUDGET_WINDOW_SECONDS": "0.5",
        "RECORDER_DAILY_START_BUDGET_WAIT_SECONDS": "10",
    }
    env.update({k if k.startswith("RECORDER_") else f"RECORDER_{k.upper()}": v for k, v in overrides.items()})
    return env


@dataclass
class RunningService:
    url: str
    client: httpx.AsyncClient
    settings: Settings
    app_state: object = field(repr=False, default=None)


ServiceFactory = Callable[..., AbstractAsyncContextManager[RunningService]]


@contextlib.asynccontextmanager
async def run_service(env: dict[str, str]) -> AsyncIterator[RunningService]:
    settings = load_settings(env)
    app = create_app(settings)
    async with serve_in_task(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield RunningService(url=url, client=client, settings=settings, app_state=app.state)


@pytest.fixture
def service_factory() -> ServiceFactory:
    return run_service
