"""The anonymous surface under abuse (over real HTTP to a running server): the rate limit keys
on the real client behind trusted proxies only, JSON endpoints take only JSON, room names cannot
steer Daily API paths, and anonymous answers reveal no room name."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.plugins.simulator import DailySim

ROOM = "abuse-20261124100000"


@pytest.fixture
def meeting_id() -> str:
    """A meeting of this test alone (the SQLite database is shared by the session)."""
    return str(uuid.uuid4())


def start_path(meeting_id: str) -> str:
    return f"/v1/meetings/{meeting_id}/recordings/start"


def meeting_body(**over: Any) -> dict[str, Any]:
    body = {
        "room_name": ROOM,
        "recording_type": "cloud",
        "start_date": "2026-01-01T10:00:00Z",
        "end_date": "2099-01-01T10:00:00Z",
    }
    return body | over


async def register(svc: RunningService, meeting_id: str, **over: Any) -> Any:
    return await svc.client.put(f"/v1/meetings/{meeting_id}", json=meeting_body(**over), headers=AUTH)


async def start_from(svc: RunningService, forwarded_for: str | None) -> int:
    """A start of an unregistered meeting (404 unless rate-limited), as sent through a proxy."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    r = await svc.client.post(start_path("unregistered"), json={"type": "raw-tracks"}, headers=headers)
    return r.status_code


# -- client address and rate limit --------------------------------------------------------------


async def test_behind_a_trusted_proxy_clients_get_their_own_buckets(
    sqlite_url: str, service_factory: ServiceFactory
) -> None:
    env = service_env(sqlite_url, RECORDER_RATE_LIMIT_PER_MINUTE="2", RECORDER_TRUSTED_PROXIES="127.0.0.1")
    async with service_factory(env) as svc:
        assert [await start_from(svc, "198.51.100.1") for _ in range(2)] == [404, 404]
        assert await start_from(svc, "198.51.100.1") == 429
        # Another client behind the same proxy is not locked out.
        assert await start_from(svc, "198.51.100.2") == 404
        # Inventing a leftmost hop does not buy a fresh bucket.
        assert await start_from(svc, "192.0.2.77, 198.51.100.1") == 429
        assert await start_from(svc, "192.0.2.78, 10.0.0.1, 198.51.100.1") == 429


async def test_rate_limit_answers_carry_ratelimit_headers(
    sqlite_url: str, service_factory: ServiceFactory
) -> None:
    env = service_env(sqlite_url, RECORDER_RATE_LIMIT_PER_MINUTE="1")
    async with service_factory(env) as svc:
        await start_from(svc, None)
        r = await svc.client.post(start_path("unregistered"), json={"type": "raw-tracks"})
        assert r.status_code == 429
        assert r.headers["RateLimit-Limit"] == "1"
        assert r.headers["RateLimit-Remaining"] == "0"
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 60
        assert r.headers["Retry-After"] == r.headers["RateLimit-Reset"]


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"], ids=["none", "other-network"])
async def test_forwarded_headers_of_an_untrusted_peer_are_ignored(
    sqlite_url: str, service_factory: ServiceFactory, trusted: str
) -> None:
    env = service_env(sqlite_url, RECORDER_RATE_LIMIT_PER_MINUTE="2", RECORDER_TRUSTED_PROXIES=trusted)
    async with service_factory(env) as svc:
        # Each request claims another client; the peer (127.0.0.1) is what counts.
        codes = [await start_from(svc, f"198.51.100.{i}") for i in range(1, 4)]
        assert codes == [404, 404, 429]


# -- strict JSON bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_start_body_that_is_not_declared_json_is_415(
    sqlite_url: str,
    daily_sim: DailySim,
    service_factory: ServiceFactory,
    content_type: str | None,
    meeting_id: str,
) -> None:
    async with service_factory(service_env(sqlite_url, daily_sim.base_url)) as svc:
        await register(svc, meeting_id)
        await daily_sim.join(ROOM)
        headers = {"Content-Type": content_type} if content_type else {}
        r = await svc.client.post(start_path(meeting_id), content=b'{"type": "raw-tracks"}', headers=headers)
        assert r.status_code == 415, r.text
        assert r.json()["status_code"] == 415
    assert (await daily_sim.call_times())["calls"] == []


async def test_json_with_a_charset_is_json(
    sqlite_url: str, daily_sim: DailySim, service_factory: ServiceFactory, meeting_id: str
) -> None:
    async with service_factory(service_env(sqlite_url, daily_sim.base_url)) as svc:
        await register(svc, meeting_id)
        await daily_sim.join(ROOM)
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        r = await svc.client.post(start_path(meeting_id), content=b'{"type": "raw-tracks"}', headers=headers)
        assert r.status_code == 200, r.text


async def test_the_internal_put_is_strict_too(
    sqlite_url: str, service_factory: ServiceFactory, meeting_id: str
) -> None:
    async with service_factory(service_env(sqlite_url)) as svc:
        body = b'{"room_name": "r", "recording_type": "cloud", "start_date": "2026-01-01T10:00:00Z"}'
        r = await svc.client.put(
            f"/v1/meetings/{meeting_id}", content=body, headers=AUTH | {"Content-Type": "text/plain"}
        )
        assert r.status_code == 415
        # Authentication comes first: an anonymous caller learns nothing about the body rules.
        r = await svc.client.put(
            f"/v1/meetings/{meeting_id}", content=body, headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 401


@pytest.mark.parametrize("endpoint", ["start", "put"])
async def test_json_nested_ten_thousand_deep_is_400_not_500(
    sqlite_url: str, daily_sim: DailySim, service_factory: ServiceFactory, endpoint: str, meeting_id: str
) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    async with service_factory(service_env(sqlite_url, daily_sim.base_url)) as svc:
        await register(svc, meeting_id)
        await daily_sim.join(ROOM)
        send = svc.client.post if endpoint == "start" else svc.client.put
        path = start_path(meeting_id) if endpoint == "start" else f"/v1/meetings/{meeting_id}"
        r = await send(path, content=deep, headers=AUTH | {"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json() == {"status_code": 400, "detail": "the request body is not valid JSON"}
        deep_object = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
        r = await send(path, content=deep_object, headers=AUTH | {"Content-Type": "application/json"})
        assert r.status_code == 400
    assert (await daily_sim.call_times())["calls"] == []


# -- room names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "room", ["../../_sim/reset?x=", "a/b", "a?b", "a b", "a%2Fb", "", "x" * 129, "room.name", "rööm"]
)
async def test_room_names_that_could_steer_a_daily_path_are_400(
    sqlite_url: str, daily_sim: DailySim, service_factory: ServiceFactory, room: str, meeting_id: str
) -> None:
    async with service_factory(service_env(sqlite_url, daily_sim.base_url)) as svc:
        r = await register(svc, meeting_id, room_name=room)
        assert r.status_code == 400, r.text
        r = await svc.client.post(start_path(meeting_id), json={"type": "raw-tracks"})
        assert r.status_code == 404  # nothing was registered
    assert (await daily_sim.call_times())["calls"] == []


async def test_valid_room_names_of_128_characters_are_accepted(
    sqlite_url: str, service_factory: ServiceFactory, meeting_id: str
) -> None:
    async with service_factory(service_env(sqlite_url)) as svc:
        r = await register(svc, meeting_id, room_name="A-z_0" + "9" * 123)
        assert r.status_code == 201, r.text


# -- anonymous answers ----------------------------------------------------------------------


async def test_anonymous_answers_name_no_room_and_tell_little(
    sqlite_url: str, daily_sim: DailySim, service_factory: ServiceFactory, meeting_id: str
) -> None:
    env = service_env(sqlite_url, daily_sim.base_url)
    async with service_factory(env) as svc:
        await register(
            svc, meeting_id
        )  # nobody in the room: Daily says "room <name> does not seem to be hosting"
        not_hosting = await svc.client.post(start_path(meeting_id), json={"type": "raw-tracks"})
        assert not_hosting.status_code == 409
        assert ROOM not in not_hosting.text
        await register(svc, "not-recorded", recording_type="none")
        await register(svc, "ended", end_date="2026-01-01T11:00:00Z")
        not_recorded = await svc.client.post(
            "/v1/meetings/not-recorded/recordings/start", json={"type": "raw-tracks"}
        )
        ended = await svc.client.post("/v1/meetings/ended/recordings/start", json={"type": "raw-tracks"})
        unknown = await svc.client.post("/v1/meetings/unknown/recordings/start", json={"type": "raw-tracks"})
        assert (not_recorded.status_code, ended.status_code, unknown.status_code) == (409, 409, 404)
        assert not_recorded.json()["detail"] == ended.json()["detail"]
        assert "not-recorded" not in not_recorded.text and "ended" not in ended.text
        assert "unknown" not in unknown.text

        # Daily's own error text is quoted on 502, without the room name.
        await daily_sim.join(ROOM)
        await asyncio.sleep(0.3)  # the shared "not hosting" answer above has expired
        await daily_sim.fault(
            "start_recording", status=403, error="forbidden-error", info=f"room {ROOM} may not record"
        )
        failed = await svc.client.post(start_path(meeting_id), json={"type": "raw-tracks"})
        assert failed.status_code == 502
        assert "forbidden-error" in failed.json()["detail"]
        assert "may not record" in failed.json()["detail"]
        assert ROOM not in failed.text
