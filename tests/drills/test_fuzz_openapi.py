"""Schemathesis against the service's own OpenAPI document, on a real `serve` process.

Every operation, valid and invalid inputs, with and without the internal bearer key: no 5xx,
and every error answer has the contract's shape (§3: JSON object, int status_code, str detail)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from recorder_service.app import create_app
from recorder_service.settings import load_settings
from tests.plugins.processes import Replica, free_port, replica_env, spawn
from tests.plugins.service import AUTH, service_env

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
# A registered meeting, so the fuzzer's requests also reach code past the 404 of unknown ids.
KNOWN_MEETING = "5b0b5d1c-2a33-4b7e-9d1e-0f0c7a1b2c3d"


def _wait_ready(url: str, path: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}{path}").status_code == 200:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready")


def _stop(replica: Replica) -> None:
    replica.process.terminate()
    try:
        replica.process.wait(20)
    except Exception:
        replica.process.kill()
        replica.process.wait(5)


def _spawn_logged(env: dict[str, str], log: Path) -> Replica:
    # Like tests.plugins.processes.spawn, but the server's log is kept: a 5xx quotes its traceback.
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "recorder_service.cli", "serve", "--port", str(port)],
            env=replica_env({**env, "RECORDER_LOG_FORMAT": "text"}),
            stdout=sink,
            stderr=sink,
        )
    return Replica(f"http://127.0.0.1:{port}", process, port)


@pytest.fixture(scope="module")
def service_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "service.log"


@pytest.fixture(scope="module")
def fuzzed_service(pg_url: str, service_log: Path) -> Iterator[str]:
    # Sync fixture, separate processes: Schemathesis' tests are synchronous and block while
    # waiting for answers, so the server must not share the test's event loop.
    port = free_port()
    daily = spawn({"RECORDER_DAILY_API_KEY": "sim-key"}, "simulate-daily", "--port", str(port), port=port)
    env = service_env(
        pg_url,
        f"{daily.url}/v1",
        RECORDER_RATE_LIMIT_PER_MINUTE="1000000",
        RECORDER_LOG_LEVEL="ERROR",
        RECORDER_START_NOT_HOSTING_BUDGET_SECONDS="0",
    )
    service = _spawn_logged(env, service_log)
    try:
        _wait_ready(daily.url, "/_sim/calls")
        _wait_ready(service.url, "/readyz")
        body = {
            "room_name": "fuzz-room",
            "recording_type": "cloud",
            "start_date": "2026-01-01T10:00:00Z",
            "end_date": None,
        }
        r = httpx.put(f"{service.url}/v1/meetings/{KNOWN_MEETING}", json=body, headers=AUTH, timeout=10)
        assert r.status_code in (200, 201), r.text
        yield service.url
    finally:
        _stop(service)
        _stop(daily)


def _openapi_document() -> dict[str, Any]:
    # The same document the server answers at /schema/openapi.json (checked below), built
    # in-process so the operations are known when pytest collects the tests.
    app = create_app(load_settings(service_env("sqlite+aiosqlite:///unused.db")))
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


schema = schemathesis.openapi.from_dict(_openapi_document())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
)


def test_the_fuzzed_document_is_the_served_one(fuzzed_service: str) -> None:
    served = httpx.get(f"{fuzzed_service}/schema/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(_openapi_document()))


def _content_type(headers: dict[str, list[str]]) -> str:
    values = {k.lower(): v for k, v in headers.items()}.get("content-type") or [""]
    return values[0]


def assert_error_shape(
    request: str, method: str, status: int, content_type: str, text: str, log: Path
) -> None:
    if status >= 500:
        tail = log.read_text(errors="replace")[-3000:]
        pytest.fail(f"{request}\nanswered {status}: {text[:500]}\nservice log:\n{tail}")
    if status < 400 or method == "HEAD":
        return
    assert content_type.startswith("application/json"), f"{status} with {content_type!r}: {text[:200]}"
    body: Any = json.loads(text)
    assert isinstance(body, dict), body
    assert isinstance(body.get("status_code"), int) and not isinstance(body["status_code"], bool), body
    assert body["status_code"] == status, body
    assert isinstance(body.get("detail"), str), body


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_error_and_errors_have_the_contract_shape(
    case: schemathesis.Case[Any], fuzzed_service: str, service_log: Path
) -> None:
    for headers in (dict(AUTH), {"Authorization": "Bearer wrong-key"}, {}):
        case_headers = dict(case.headers or {})
        case_headers.pop("Authorization", None)
        case_headers.pop("authorization", None)
        response = case.call(
            base_url=fuzzed_service, headers=case_headers | headers, allow_redirects=False, timeout=15
        )
        assert_error_shape(
            case.as_curl_command(headers=case_headers | headers),
            case.method.upper(),
            response.status_code,
            _content_type(response.headers),
            response.text,
            service_log,
        )


def test_availability_rejects_a_nul_meeting_id_as_a_client_error(fuzzed_service: str) -> None:
    r = httpx.get(
        f"{fuzzed_service}/v1/recordings/availability",
        params={"meeting_id": "\x00"},
        headers=AUTH,
        timeout=10,
    )
    assert r.status_code == 400, r.text
