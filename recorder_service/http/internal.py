"""Internal endpoints for Reflector's backend (bearer auth)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, put
from litestar.params import JSONBody, QueryParameter

from recorder_service.core.models import Meeting
from recorder_service.errors import InvalidInput
from recorder_service.http.guards import (
    MEETING_ID,
    AnyRequest,
    require_internal_key,
    resources_of,
    valid_meeting_id,
)
from recorder_service.http.schemas import (
    AvailabilityOut,
    AvailabilityResponse,
    MeetingIdPath,
    MeetingPut,
    MeetingRecordings,
    as_utc,
    meeting_recordings,
)
from recorder_service.resources import Resources
from recorder_service.services.ingest import apply_pending
from recorder_service.services.meetings import (
    MAX_AVAILABILITY_IDS,
    availability_of,
    meeting_with_recordings,
    register_meeting,
)


async def _meeting_body(res: Resources, meeting_id: MeetingIdPath) -> MeetingRecordings:
    meeting, recordings, availability = await meeting_with_recordings(res.db, meeting_id)
    return meeting_recordings(meeting, recordings, availability)


class MeetingsController(Controller):
    path = "/v1"
    guards = [require_internal_key, valid_meeting_id]
    tags = ["internal"]
    security = [{"BearerToken": []}]

    @put("/meetings/{meeting_id:str}", summary="Register or update a meeting (idempotent)")
    async def put_meeting(
        self, request: AnyRequest, meeting_id: MeetingIdPath, data: JSONBody[MeetingPut]
    ) -> Response[MeetingRecordings]:
        res = resources_of(request)
        meeting = Meeting(
            id=meeting_id,
            room_name=data.room_name,
            recording_type=data.recording_type,
            start_date=as_utc(data.start_date),
            end_date=as_utc(data.end_date) if data.end_date else None,
        )
        created = await register_meeting(res.db, meeting)
        # Events that arrived before the meeting was registered can be applied now.
        await apply_pending(res.ingest_deps(), room_name=meeting.room_name)
        return Response(await _meeting_body(res, meeting_id), status_code=201 if created else 200)

    @get("/meetings/{meeting_id:str}/recordings", summary="A meeting's recordings and availability")
    async def get_recordings(self, request: AnyRequest, meeting_id: MeetingIdPath) -> MeetingRecordings:
        return await _meeting_body(resources_of(request), meeting_id)

    @get("/recordings/availability", summary="Cloud-recording availability of up to 100 meetings")
    async def availability(
        self,
        request: AnyRequest,
        meeting_id: Annotated[list[str] | None, QueryParameter(name="meeting_id")] = None,
    ) -> AvailabilityResponse:
        ids = meeting_id or []
        if any(not MEETING_ID.fullmatch(mid) for mid in ids):
            raise InvalidInput("every meeting_id must be 1-128 characters of [A-Za-z0-9._:-]")
        if len(ids) > MAX_AVAILABILITY_IDS:
            raise InvalidInput(f"at most {MAX_AVAILABILITY_IDS} meeting_id values per request")
        found = await availability_of(resources_of(request).db, ids)
        return AvailabilityResponse(
            meetings={
                mid: AvailabilityOut(a.cloud_recording_available, a.cloud_recording_duration)
                for mid, a in found.items()
            }
        )
