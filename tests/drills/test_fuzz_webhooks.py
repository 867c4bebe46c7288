"""Hypothesis against the running webhook endpoint (contract §6): random bytes and mutated
real Daily payloads, unsigned or wrongly signed (401, nothing stored) and correctly signed
(200 or 413, never 5xx; stored exactly once per distinct event id, also when redelivered)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg import sql

from recorder_service.adapters.db.migrate import upgrade
from tests.plugins.database import PG_ADMIN_DSN, PG_HOST, _drop_database
from tests.plugins.processes import free_port, replica_env
from tests.plugins.service import AUTH, WEBHOOK_SECRET, service_env
from tests.support.daily_signing import daily_headers
from tests.support.paths import DAILY_FIXTURES

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
MAX_BODY_BYTES = 1024 * 1024
EVENT_TYPES = [
    "recording.ready-to-download",
    "recording.started",
    "recording.error",
    "meeting.ended",
    "meeting.started",
    "participant.joined",
    "no.such.event",
]


def _fixtures() -> list[dict[str, Any]]:
    found = []
    for path in sorted(DAILY_FIXTURES.glob("webhook-*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "type" in data:
            found.append(data)
    return found


FIXTURE_EVENTS = _fixtures()


@dataclass
class Service:
    url: str
    client: httpx.Client
    log: Path
    # Event ids this module has had stored, to tell a first delivery from a redelivery.
    stored_ids: set[str] = field(default_factory=set)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.post("/v1/daily/webhook", content=body, headers=headers)

    def stored(self) -> list[dict[str, Any]]:
        r = self.client.get("/v1/daily/events", params={"limit": 1000}, headers=AUTH)
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        return events

    def fail_5xx(self, body: bytes, r: httpx.Response) -> None:
        if r.status_code >= 500:
            tail = self.log.read_text(errors="replace")[-3000:]
            pytest.fail(
                f"body {body[:300]!r}\nanswered {r.status_code}: {r.text[:300]}\nservice log:\n{tail}"
            )


@contextlib.contextmanager
def _own_database() -> Iterator[str]:
    # A database of this module's own: "nothing stored" is checked on the whole inbox.
    name = f"recorder_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = f"postgresql+psycopg://{PG_HOST}/{name}"
        upgrade(url)
        yield url
    finally:
        _drop_database(name)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A separate process: Hypothesis' examples run synchronously and block on each answer.
    log = tmp_path_factory.mktemp("fuzz-webhooks") / "service.log"
    port = free_port()
    with _own_database() as db_url, log.open("wb") as sink:
        env = service_env(db_url, RECORDER_LOG_LEVEL="ERROR", RECORDER_LOG_FORMAT="text")
        process = subprocess.Popen(
            [sys.executable, "-m", "recorder_service.cli", "serve", "--port", str(port)],
            env=replica_env(env),
            stdout=sink,
            stderr=sink,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=15) as client:
                deadline = time.monotonic() + 30
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get("/readyz").status_code == 200:
                            break
                    assert time.monotonic() < deadline, "service not ready"
                    time.sleep(0.1)
                yield Service(url, client, log)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# -- strategies ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
event_ids = st.one_of(
    st.uuids().map(lambda u: f"evt-{u}"),
    st.text(min_size=1, max_size=300),
    st.text(min_size=250, max_size=260),
    st.just(""),
    json_values,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A real Daily payload with a few fields replaced, dropped or retyped."""
    event: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(FIXTURE_EVENTS))))
    event["id"] = draw(st.uuids().map(lambda u: f"evt-{u}"))  # fresh by default; mutations may override
    payload = event.get("payload")
    for _ in range(draw(st.integers(0, 4))):
        target: dict[str, Any] = payload if isinstance(payload, dict) and draw(st.booleans()) else event
        keys = sorted(target)
        action = draw(st.sampled_from(["replace", "drop", "add", "type", "id"]))
        if action == "replace" and keys:
            target[draw(st.sampled_from(keys))] = draw(json_values)
        elif action == "drop" and keys:
            target.pop(draw(st.sampled_from(keys)))
        elif action == "add":
            target[draw(st.text(max_size=12))] = draw(json_values)
        elif action == "type":
            event["type"] = draw(st.sampled_from(EVENT_TYPES))
        elif action == "id":
            event["id"] = draw(event_ids)
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    raw = text.encode()
    if draw(st.integers(0, 9)) == 0 and raw:  # now and then, a byte-level corruption
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw


bodies = st.one_of(st.binary(max_size=2048), mutated_events())


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _is_verification(body: bytes) -> bool:
    try:
        return bool(json.loads(body) == {"test": "test"})
    except (ValueError, UnicodeDecodeError):
        return False


def _event_id(body: bytes) -> str | None:
    """The event id a sender would expect deduplication on, when the body names one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"]:
        return str(data["id"])
    return None


def _sign(secret_b64: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(base64.b64decode(secret_b64), timestamp.encode() + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


OTHER_SECRET = base64.b64encode(b"not-the-configured-secret-012345").decode()


@st.composite
def bad_signatures(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    now = str(int(time.time()))
    kind = draw(
        st.sampled_from(["none", "no-timestamp", "other-secret", "garbage", "other-timestamp", "other-body"])
    )
    headers = {"Content-Type": "application/json"}
    if kind == "none":
        return headers
    if kind == "no-timestamp":
        return headers | {"X-Webhook-Signature": _sign(WEBHOOK_SECRET, now, body)}
    if kind == "other-secret":
        return headers | daily_headers(OTHER_SECRET, now, body)
    if kind == "garbage":
        garbage = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60))
        return headers | {"X-Webhook-Timestamp": now, "X-Webhook-Signature": garbage}
    if kind == "other-timestamp":
        return headers | {
            "X-Webhook-Timestamp": str(int(now) + 1),
            "X-Webhook-Signature": _sign(WEBHOOK_SECRET, now, body),
        }
    return headers | {
        "X-Webhook-Timestamp": now,
        "X-Webhook-Signature": _sign(WEBHOOK_SECRET, now, body + b" "),
    }


# -- tests ---------------------------------------------------------------------------------


def test_unsigned_or_wrongly_signed_webhooks_are_rejected_and_nothing_is_stored(service: Service) -> None:
    before = len(service.stored())

    @FUZZ
    @given(data=st.data(), body=bodies)
    def check(data: st.DataObject, body: bytes) -> None:
        assume(not _is_verification(body))
        headers = data.draw(bad_signatures(body))
        r = service.post(body, headers)
        service.fail_5xx(body, r)
        assert r.status_code == 401, (body[:200], headers, r.status_code, r.text)
        body_json = r.json()
        assert isinstance(body_json["status_code"], int) and isinstance(body_json["detail"], str)

    check()
    assert len(service.stored()) == before


def test_signed_webhooks_are_acknowledged_and_stored_once_per_event_id(service: Service) -> None:
    @FUZZ
    @given(body=bodies, redeliveries=st.integers(0, 2))
    def check(body: bytes, redeliveries: int) -> None:
        assume(not _is_verification(body))
        before = {e["id"] for e in service.stored()}
        for _ in range(1 + redeliveries):
            r = service.post(body, daily_headers(WEBHOOK_SECRET, str(int(time.time())), body))
            service.fail_5xx(body, r)
            assert r.status_code == 200, (body[:200], r.status_code, r.text)
        after = [e["id"] for e in service.stored()]
        assert len(after) == len(set(after)), "an event id is stored twice"
        new = set(after) - before
        assert len(new) <= 1, new  # one body, however often delivered, is at most one event
        # Stored under Daily's event id or, when the body names none the service can read, under
        # "sha256:<hex of the body>" (tables.InboxEventRow.id): either way exactly once.
        keys = {"sha256:" + hashlib.sha256(body).hexdigest()}
        event_id = _event_id(body)
        if event_id is not None:
            keys.add(event_id)
            # An id the inbox column cannot hold (too long, or NUL) is kept as its digest.
            keys.add("sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest())
        if _is_utf8(body):  # otherwise the service may still read the id where json cannot
            assert keys & set(after), (keys, new, body[:200])
            assert new <= keys, (new, keys)

    check()


def test_a_signed_body_over_one_mebibyte_is_refused_with_413_and_not_stored(service: Service) -> None:
    before = len(service.stored())
    body = json.dumps(
        {"type": "recording.started", "id": f"evt-{uuid.uuid4()}", "pad": "x" * MAX_BODY_BYTES}
    ).encode()
    r = service.post(body, daily_headers(WEBHOOK_SECRET, str(int(time.time())), body))
    assert r.status_code == 413, r.text
    assert isinstance(r.json()["detail"], str)
    assert len(service.stored()) == before


def _ready_with(**changes: Any) -> bytes:
    event = json.loads((DAILY_FIXTURES / "webhook-recording-ready-cloud.json").read_text())
    event["id"] = f"evt-{uuid.uuid4()}"
    for key, value in changes.items():
        if key.startswith("payload_"):
            event["payload"][key.removeprefix("payload_")] = value
        else:
            event[key] = value
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_ready_with(id="x" * 300), id="id-over-255-chars"),
        pytest.param(_ready_with(id="a\x00b"), id="nul-in-id"),
        pytest.param(_ready_with(type="t" * 100), id="type-over-64-chars"),
        pytest.param(_ready_with(payload_room_name="r" * 300), id="room-name-over-255-chars"),
        pytest.param(_ready_with(payload_room_name="a\x00b"), id="nul-in-room-name"),
    ],
)
def test_a_signed_event_with_an_unstorable_head_is_still_acknowledged(service: Service, body: bytes) -> None:
    r = service.post(body, daily_headers(WEBHOOK_SECRET, str(int(time.time())), body))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "stored"
    again = service.post(body, daily_headers(WEBHOOK_SECRET, str(int(time.time())), body))
    assert again.json()["status"] == "duplicate"  # still deduplicated on its (digested) id
