"""Daily's REST API under /v1, as the reference describes it.

Each handler names its operation in `opt`; the middleware in app.py authenticates, injects
faults and counts calls by that name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from recorder_service.tools.simulator.errors import decode_json, invalid_request, not_found
from recorder_service.tools.simulator.listing import MAX_LIMIT, newest_first, page_of
from recorder_service.tools.simulator.model import RECORDING_TYPES, RESERVED_INSTANCE_ID, Recording, Room
from recorder_service.tools.simulator.runtime import Simulator
from recorder_service.tools.simulator.webhooks import WebhookFields

Json = dict[str, Any]
# Provided by app.py from the app state, under the parameter name `sim`.
SimDep = NamedDependency[Simulator]


class RoomBody(msgspec.Struct, kw_only=True):
    name: str | None = None
    privacy: str = "public"
    properties: dict[str, Any] = msgspec.field(default_factory=dict)


class StartBody(msgspec.Struct, kw_only=True):
    type: str = "cloud"
    instanceId: str | None = None
    layout: dict[str, Any] | None = None
    maxDuration: int | None = None


class StopBody(msgspec.Struct, kw_only=True):
    type: str = "cloud"
    instanceId: str | None = None


class RecordingOut(msgspec.Struct, omit_defaults=True):
    """Daily's recording object: `duration` and `s3key` are absent while in progress, and,
    as observed in production, there is never a `type` field."""

    id: str
    room_name: str
    start_ts: int
    status: str
    max_participants: int
    share_token: str
    tracks: list[dict[str, Any]]
    duration: int | None = None
    s3key: str | None = None
    mtgSessionId: str | None = None


def recording_out(rec: Recording) -> RecordingOut:
    return RecordingOut(
        id=rec.id,
        room_name=rec.room_name,
        start_ts=int(rec.start_ts),
        status=rec.status,
        max_participants=rec.max_participants,
        share_token=rec.share_token,
        tracks=rec.tracks,
        duration=rec.duration,
        s3key=rec.s3key,
        mtgSessionId=rec.mtg_session_id,
    )


def checked_instance_id(value: str | None) -> str:
    if value is None:
        return RESERVED_INSTANCE_ID
    try:
        uuid.UUID(value)
    except ValueError:
        raise invalid_request(f"instanceId {value} is not a valid UUID") from None
    if value.lower() == RESERVED_INSTANCE_ID:
        # Invented text: Daily only documents that the default must not be passed.
        raise invalid_request(f"instanceId {value} is reserved for Daily's default instance")
    return value


def checked_type(value: str) -> str:
    if value not in RECORDING_TYPES:
        raise invalid_request(f"type must be one of {', '.join(RECORDING_TYPES)}")
    return value


@post("/rooms", status_code=200, opt={"operation": "create_room"})
async def create_room(request: Request[Any, Any, Any], sim: SimDep) -> Json:
    body = decode_json(await request.body(), RoomBody)
    return _room_json(sim, sim.state.create_room(body.name, body.privacy, body.properties))


@get("/rooms/{name:str}", opt={"operation": "get_room"})
async def get_room(name: FromPath[str], sim: SimDep) -> Json:
    if name not in sim.state.rooms:
        raise not_found(f"room {name} not found")
    return _room_json(sim, sim.state.rooms[name])


@delete("/rooms/{name:str}", status_code=200, opt={"operation": "delete_room"})
async def delete_room(name: FromPath[str], sim: SimDep) -> Json:
    sim.state.delete_room(name)
    sim.flush()
    return {"deleted": True, "name": name}


@get("/rooms/{name:str}/presence", opt={"operation": "get_presence"})
async def get_presence(name: FromPath[str], sim: SimDep) -> Json:
    room, now = sim.state.rooms.get(name), sim.clock()
    people = list(room.participants.values()) if room else []
    data = [
        {
            "room": name,
            "id": p.session_id,
            "userId": p.user_id,
            "userName": p.user_name,
            "joinTime": _iso(p.joined_at),
            "duration": int(now - p.joined_at),
        }
        for p in people
    ]
    return {"total_count": len(data), "data": data}


@post("/rooms/{name:str}/recordings/start", status_code=200, opt={"operation": "start_recording"})
async def start_recording(name: FromPath[str], request: Request[Any, Any, Any], sim: SimDep) -> Json:
    sim.state.check_start_rate()
    body = decode_json(await request.body(), StartBody)
    recording_type, instance_id = checked_type(body.type), checked_instance_id(body.instanceId)
    sim.state.start_recording(name, recording_type, instance_id, body.layout, via="rest")
    sim.calls.record_start(name, recording_type, instance_id, body.maxDuration)
    sim.flush()
    # The real body is undocumented (reference §4): callers must treat it as opaque.
    return {"status": "sent"}


@post("/rooms/{name:str}/recordings/stop", status_code=200, opt={"operation": "stop_recording"})
async def stop_recording(name: FromPath[str], request: Request[Any, Any, Any], sim: SimDep) -> Json:
    body = decode_json(await request.body(), StopBody)
    instance_id = body.instanceId or RESERVED_INSTANCE_ID
    sim.state.stop_recording(name, checked_type(body.type), instance_id)
    sim.flush()
    return {"status": "sent"}


@get("/recordings", opt={"operation": "list_recordings"})
async def list_recordings(
    sim: SimDep,
    limit: FromQuery[int] = MAX_LIMIT,
    starting_after: FromQuery[str | None] = None,
    ending_before: FromQuery[str | None] = None,
    room_name: FromQuery[str | None] = None,
) -> Json:
    matching = [r for r in sim.state.recordings.values() if room_name is None or r.room_name == room_name]
    ordered = newest_first(matching)
    page = page_of(ordered, limit, starting_after, ending_before)
    return {"total_count": len(ordered), "data": [msgspec.to_builtins(recording_out(r)) for r in page]}


@get("/recordings/{recording_id:str}", opt={"operation": "get_recording"})
async def get_recording(recording_id: FromPath[str], sim: SimDep) -> RecordingOut:
    return recording_out(sim.state.get_recording(recording_id))


@delete("/recordings/{recording_id:str}", status_code=200, opt={"operation": "delete_recording"})
async def delete_recording(recording_id: FromPath[str], sim: SimDep) -> Json:
    sim.state.delete_recording(recording_id)
    return {"deleted": True, "id": recording_id}


@get("/recordings/{recording_id:str}/access-link", opt={"operation": "get_access_link"})
async def get_access_link(
    recording_id: FromPath[str], sim: SimDep, valid_for_secs: FromQuery[int] = 3600
) -> Json:
    rec = sim.state.get_recording(recording_id)
    if rec.s3key is None:
        raise invalid_request(f"recording {recording_id} has no file yet")  # invented text
    config = sim.config
    if config.s3_endpoint_url and config.s3_bucket:
        link = f"{config.s3_endpoint_url.rstrip('/')}/{config.s3_bucket}/{rec.s3key}"
    else:
        link = f"https://{config.domain_name}.sim.invalid/recordings/{rec.s3key}"
    return {"download_link": link, "expires": int(sim.clock()) + valid_for_secs}


@get("/webhooks", opt={"operation": "list_webhooks"})
async def list_webhooks(sim: SimDep) -> list[Json]:
    # A bare array, not {data: [...]} (reference §7).
    return [hook.as_json() for hook in sim.webhooks.webhooks.values()]


@post("/webhooks", status_code=200, opt={"operation": "create_webhook"})
async def create_webhook(request: Request[Any, Any, Any], sim: SimDep) -> Json:
    fields = decode_json(await request.body(), WebhookFields)
    return (await sim.webhooks.create(fields)).as_json()


@get("/webhooks/{webhook_uuid:str}", opt={"operation": "get_webhook"})
async def get_webhook(webhook_uuid: FromPath[str], sim: SimDep) -> Json:
    return sim.webhooks.get(webhook_uuid).as_json()


@post("/webhooks/{webhook_uuid:str}", status_code=200, opt={"operation": "update_webhook"})
async def update_webhook(webhook_uuid: FromPath[str], request: Request[Any, Any, Any], sim: SimDep) -> Json:
    fields = decode_json(await request.body(), WebhookFields)
    return (await sim.webhooks.update(webhook_uuid, fields)).as_json()


@delete("/webhooks/{webhook_uuid:str}", status_code=200, opt={"operation": "delete_webhook"})
async def delete_webhook(webhook_uuid: FromPath[str], sim: SimDep) -> Json:
    return (await sim.webhooks.delete(webhook_uuid)).as_json()


def _room_json(sim: SimDep, room: Room) -> Json:
    return {
        "id": room.id,
        "name": room.name,
        "api_created": room.api_created,
        "privacy": room.privacy,
        "url": f"https://{sim.config.domain_name}.daily.co/{room.name}",
        "created_at": _iso(room.created_at),
        "config": room.config,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


rest_router = Router(
    path="/v1",
    route_handlers=[
        create_room,
        get_room,
        delete_room,
        get_presence,
        start_recording,
        stop_recording,
        list_recordings,
        get_recording,
        delete_recording,
        get_access_link,
        list_webhooks,
        create_webhook,
        get_webhook,
        update_webhook,
        delete_webhook,
    ],
)
