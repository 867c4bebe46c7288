"""Control API under /_sim: drive participants and faults, and inspect what the service did."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

import msgspec
from litestar import Request as _Request
from litestar import Router, delete, get, post
from litestar.params import FromPath

from recorder_service.tools.simulator.errors import decode_json, invalid_request
from recorder_service.tools.simulator.faults import Fault
from recorder_service.tools.simulator.model import RESERVED_INSTANCE_ID, Recording
from recorder_service.tools.simulator.rest import SimDep, checked_type

Json = dict[str, Any]
Request = _Request[Any, Any, Any]


class JoinBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    user_name: str = "Guest"
    user_id: str | None = None


class LeaveBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    session_id: str


class ClientStartBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str = "cloud"
    instanceId: str | None = None
    session_id: str | None = None


class FaultBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    operation: str
    status: int
    count: int = 1
    latency_s: float = 0.0
    error: str | None = None
    info: str | None = None
    after: int = 0


class LatencyBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    operation: str
    latency_s: float


class ErrorBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    error_msg: str = "cloud-recording-error: simulated failure"


@post("/rooms/{room:str}/join", status_code=200)
async def join(room: FromPath[str], request: Request, sim: SimDep) -> Json:
    body = decode_json(await request.body(), JoinBody)
    session_id = sim.state.join(room, body.user_name, body.user_id)
    sim.flush()
    return {"session_id": session_id}


@post("/rooms/{room:str}/leave", status_code=200)
async def leave(room: FromPath[str], request: Request, sim: SimDep) -> Json:
    body = decode_json(await request.body(), LeaveBody)
    sim.state.leave(room, body.session_id)
    sim.flush()
    return {}


@post("/rooms/{room:str}/end", status_code=200)
async def end_meeting(room: FromPath[str], sim: SimDep) -> Json:
    sim.state.end_meeting(room)
    sim.flush()
    return {}


@post("/rooms/{room:str}/client-start", status_code=200)
async def client_start(room: FromPath[str], request: Request, sim: SimDep) -> Json:
    """A browser started the recording with daily-js: not a REST call, no rate limit; Daily's
    default instanceId unless one is given."""
    body = decode_json(await request.body(), ClientStartBody)
    instance_id = body.instanceId or RESERVED_INSTANCE_ID
    rec = sim.state.start_recording(
        room, checked_type(body.type), instance_id, None, "client", body.session_id
    )
    sim.flush()
    return {"recording_id": rec.id, "instance_id": rec.instance_id}


@post("/faults", status_code=200)
async def add_fault(request: Request, sim: SimDep) -> Json:
    body = decode_json(await request.body(), FaultBody)
    if body.status != 0 and not 400 <= body.status <= 599:
        raise invalid_request("status must be 0 (latency only) or an HTTP error status")
    fault = Fault(body.operation, body.status, body.count, body.latency_s, body.error, body.info, body.after)
    sim.faults.add(fault)
    return asdict(fault)


@delete("/faults", status_code=200)
async def clear_faults(sim: SimDep) -> Json:
    sim.faults.faults.clear()
    return {}


@post("/latency", status_code=200)
async def set_latency(request: Request, sim: SimDep) -> Json:
    body = decode_json(await request.body(), LatencyBody)
    sim.faults.set_latency(body.operation, body.latency_s)
    return dict(sim.faults.latency_s)


@get("/calls")
async def calls(sim: SimDep) -> Json:
    """{"operations": {op: {"<status>": n}}, "starts": [{room_name, type, instance_id, count}],
    "max_durations": [{room_name, type, instance_id, max_duration}]} (the latest start's maxDuration)."""
    operations: dict[str, dict[str, int]] = defaultdict(dict)
    for (operation, status), count in sim.calls.outcomes.items():
        operations[operation][str(status)] = count
    starts = [
        {"room_name": room, "type": kind, "instance_id": instance, "count": count}
        for (room, kind, instance), count in sim.calls.starts.items()
    ]
    max_durations = [
        {"room_name": room, "type": kind, "instance_id": instance, "max_duration": value}
        for (room, kind, instance), value in sim.calls.max_durations.items()
    ]
    return {"operations": dict(operations), "starts": starts, "max_durations": max_durations}


@get("/recordings")
async def recordings(sim: SimDep) -> list[Json]:
    return [_internal(rec) for rec in sim.state.recordings.values()]


@post("/recordings/{recording_id:str}/error", status_code=200)
async def recording_error(recording_id: FromPath[str], request: Request, sim: SimDep) -> Json:
    body = decode_json(await request.body(), ErrorBody)
    rec = sim.state.fail_recording(recording_id, body.error_msg)
    sim.flush()
    return _internal(rec)


@get("/webhook-deliveries")
async def deliveries(sim: SimDep) -> list[Json]:
    return [asdict(delivery) for delivery in sim.webhooks.deliveries]


@post("/webhooks/pause", status_code=200)
async def pause_webhooks(sim: SimDep) -> Json:
    """Events emitted while paused are dropped, not queued: they model webhooks Daily never sent."""
    sim.webhooks.paused = True
    return {"paused": True}


@post("/webhooks/resume", status_code=200)
async def resume_webhooks(sim: SimDep) -> Json:
    sim.webhooks.paused = False
    return {"paused": False}


@post("/reset", status_code=200)
async def reset(sim: SimDep) -> Json:
    await sim.reset()
    return {}


def _internal(rec: Recording) -> Json:
    return {
        "id": rec.id,
        "room_name": rec.room_name,
        "type": rec.type,
        "instance_id": rec.instance_id,
        "via": rec.via,
        "status": rec.status,
        "start_ts": rec.start_ts,
        "duration": rec.duration,
        "s3key": rec.s3key,
        "tracks": rec.tracks,
        "mtg_session_id": rec.mtg_session_id,
        "max_participants": rec.max_participants,
        "started_by": rec.started_by,
        "error_msg": rec.error_msg,
    }


control_router = Router(
    path="/_sim",
    route_handlers=[
        join,
        leave,
        end_meeting,
        client_start,
        add_fault,
        clear_faults,
        set_latency,
        calls,
        recordings,
        recording_error,
        deliveries,
        pause_webhooks,
        resume_webhooks,
        reset,
    ],
)
