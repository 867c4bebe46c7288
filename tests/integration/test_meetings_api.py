from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.service import AUTH, INTERNAL_KEY, ServiceFactory, service_env

MEETING = {
    "room_name": "standup-7f3a9c",
    "recording_type": "cloud",
    "start_date": "2026-11-24T10:00:00Z",
    "end_date": "2026-11-24T11:00:00Z",
}


async def test_put_creates_then_updates(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url)) as svc:
        r = await svc.client.put("/v1/meetings/m-1", json=MEETING, headers=AUTH)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["meeting_id"] == "m-1"
        assert body["room_name"] == "standup-7f3a9c"
        assert body["cloud_recording_available"] is False
        assert body["cloud_recording_duration"] is None
        assert body["recordings"] == []

        r = await svc.client.put("/v1/meetings/m-1", json=MEETING | {"room_name": "renamed"}, headers=AUTH)
        assert r.status_code == 200
        assert r.json()["room_name"] == "renamed"

        r = await svc.client.get("/v1/meetings/m-1/recordings", headers=AUTH)
        assert r.status_code == 200
        assert set(r.json()) >= {
            "meeting_id",
            "room_name",
            "recording_type",
            "cloud_recording_available",
            "cloud_recording_duration",
            "recordings",
        }
        assert r.json()["room_name"] == "renamed"


async def test_naive_dates_are_utc_and_offsets_are_normalised(
    db_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url)) as svc:
        body = MEETING | {"start_date": "2026-11-24T10:00:00", "end_date": "2026-11-24T13:00:00+02:00"}
        r = await svc.client.put("/v1/meetings/m-2", json=body, headers=AUTH)
        assert r.status_code == 201, r.text
        assert r.json()["start_date"].startswith("2026-11-24T10:00:00")
        assert r.json()["end_date"].startswith("2026-11-24T11:00:00")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": INTERNAL_KEY},
        {"Authorization": f"Basic {INTERNAL_KEY}"},
    ],
)
async def test_internal_endpoints_need_the_bearer_key(
    db_url: str, service_factory: ServiceFactory, headers: dict[str, str]
) -> None:
    async with service_factory(service_env(db_url)) as svc:
        r = await svc.client.put("/v1/meetings/m-1", json=MEETING, headers=headers)
        assert r.status_code == 401
        assert r.json()["status_code"] == 401
        assert INTERNAL_KEY not in r.text
        for path in ("/v1/meetings/m-1/recordings", "/v1/recordings/availability?meeting_id=m-1"):
            assert (await svc.client.get(path, headers=headers)).status_code == 401
        r = await svc.client.get("/v1/meetings/m-1/recordings", headers=AUTH)
        assert r.status_code == 404  # nothing was written by the refused PUT


async def test_internal_endpoints_answer_503_without_a_configured_key(
    db_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url, RECORDER_INTERNAL_API_KEY="")) as svc:
        r = await svc.client.put("/v1/meetings/m-1", json=MEETING, headers=AUTH)
        assert r.status_code == 503
        assert "RECORDER_INTERNAL_API_KEY" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path_id", "body"),
    [
        ("bad id!", MEETING),
        ("x" * 129, MEETING),
        ("m-1", MEETING | {"recording_type": "video"}),
        ("m-1", MEETING | {"start_date": "yesterday"}),
        ("m-1", MEETING | {"unexpected": 1}),
        ("m-1", {"room_name": "r"}),
        ("m-1", MEETING | {"room_name": ""}),
        ("m-1", MEETING | {"end_date": "2026-11-24T09:00:00Z"}),
        ("m-1", "not json"),
        ("m-1", [1, 2]),
    ],
)
async def test_bad_meeting_input_is_400_and_writes_nothing(
    db_url: str, service_factory: ServiceFactory, path_id: str, body: Any
) -> None:
    async with service_factory(service_env(db_url)) as svc:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        r = await svc.client.put(
            f"/v1/meetings/{path_id}", headers=AUTH | {"Content-Type": "application/json"}, **kwargs
        )
        assert r.status_code == 400, r.text
        assert isinstance(r.json()["detail"], str)
        assert (await svc.client.get("/v1/meetings/m-1/recordings", headers=AUTH)).status_code == 404


async def test_unknown_meeting_is_404(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url)) as svc:
        r = await svc.client.get("/v1/meetings/nope/recordings", headers=AUTH)
        assert r.status_code == 404
        assert r.json() == {"status_code": 404, "detail": "meeting nope is not registered"}


async def test_availability_answers_unknown_ids_and_limits_the_batch(
    db_url: str, service_factory: ServiceFactory
) -> None:
    async with service_factory(service_env(db_url)) as svc:
        await svc.client.put("/v1/meetings/m-1", json=MEETING, headers=AUTH)
        r = await svc.client.get(
            "/v1/recordings/availability",
            params=[("meeting_id", "m-1"), ("meeting_id", "ghost")],
            headers=AUTH,
        )
        assert r.status_code == 200
        assert r.json() == {
            "meetings": {
                "m-1": {"cloud_recording_available": False, "cloud_recording_duration": None},
                "ghost": {"cloud_recording_available": False, "cloud_recording_duration": None},
            }
        }
        params: list[tuple[str, str | int | float | bool | None]]
        params = [("meeting_id", f"m{i}") for i in range(101)]
        r = await svc.client.get("/v1/recordings/availability", params=params, headers=AUTH)
        assert r.status_code == 400
        params = [("meeting_id", f"m{i}") for i in range(100)]
        assert (
            await svc.client.get("/v1/recordings/availability", params=params, headers=AUTH)
        ).status_code == 200


async def test_oversize_body_is_413(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url)) as svc:
        big = {
            "room_name": "r" * (1024 * 1024 + 10),
            "recording_type": "cloud",
            "start_date": "2026-11-24T10:00:00Z",
        }
        r = await svc.client.put("/v1/meetings/m-1", json=big, headers=AUTH)
        assert r.status_code == 413
        assert r.json()["status_code"] == 413


async def test_health_and_openapi(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url)) as svc:
        assert (await svc.client.get("/healthz")).status_code == 200
        r = await svc.client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"] == {"database": "ok"}
        paths = (await svc.client.get("/schema/openapi.json")).json()["paths"]
        assert {
            "/v1/meetings/{meeting_id}/recordings/start",
            "/v1/meetings/{meeting_id}",
            "/v1/meetings/{meeting_id}/recordings",
            "/v1/recordings/availability",
            "/healthz",
            "/readyz",
        } <= set(paths)


async def test_readyz_reports_redis_down(db_url: str, service_factory: ServiceFactory) -> None:
    async with service_factory(service_env(db_url, RECORDER_REDIS_URL="redis://127.0.0.1:1/0")) as svc:
        r = await svc.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "redis": "unavailable"}
